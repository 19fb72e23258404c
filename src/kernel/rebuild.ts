import type { Knex } from '@mikro-orm/knex';

export interface RebuiltTable {
  name: string;
  /** The columns whose rows are copied over (all of them, as the old table had them). */
  columns: string[];
  /** The whole new definition but its indexes; `ref` names a table of the same rebuild, for foreign keys. */
  create(t: Knex.CreateTableBuilder, ref: (table: string) => string): void;
  /** Indexes are made last: their names are free only once the old table is gone. */
  indexes?(t: Knex.AlterTableBuilder): void;
}

/**
 * SQLite cannot change a column's constraints in place, so a migration that must do so rebuilds
 * the tables (https://sqlite.org/lang_altertable.html#otheralter) inside its transaction:
 * create `<name>__new`, copy the rows, drop the old tables children first, rename the new ones.
 * Renaming rewrites the foreign keys that point at `<name>__new`, so they end up on `<name>`;
 * no row ever points at a dropped table, so foreign keys stay on throughout. Parents go first in `tables`.
 */
export function rebuildTables(schema: Knex.SchemaBuilder, knex: Knex, tables: RebuiltTable[]): Knex.SchemaBuilder {
  const fresh = (name: string) => `${name}__new`;
  for (const table of tables) {
    schema = schema.createTable(fresh(table.name), (t) => table.create(t, fresh));
  }
  for (const { name, columns } of tables) {
    schema = schema.raw(
      knex
        .raw(
          `insert into ?? (${columns.map(() => '??').join(', ')}) select ${columns.map(() => '??').join(', ')} from ??`,
          [fresh(name), ...columns, ...columns, name],
        )
        .toQuery(),
    );
  }
  for (const { name } of [...tables].reverse()) schema = schema.dropTable(name);
  // knex's types say renameTable returns a promise; on a schema builder it chains like the rest.
  for (const { name } of tables) schema = schema.renameTable(fresh(name), name) as unknown as Knex.SchemaBuilder;
  for (const table of tables) {
    if (table.indexes) schema = schema.alterTable(table.name, (t) => table.indexes?.(t));
  }
  return schema;
}
