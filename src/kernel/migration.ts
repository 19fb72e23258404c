import type { Knex } from '@mikro-orm/knex';
import { Migration } from '@mikro-orm/migrations';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';

export type Dialect = 'sqlite' | 'postgresql';

/** A timestamp with its time zone, as every table of every module stores them. */
export const timestamp = (t: Knex.CreateTableBuilder, name: string) => t.datetime(name, { useTz: true });

/**
 * Turns a column into text limited to a list of values by a named check (PostgreSQL): how the
 * entities' enums are stored there. The values are written out by the migration, not imported:
 * a migration states the schema of its day, whatever the entities say later.
 */
export function limitTo(t: Knex.AlterTableBuilder, column: string, values: string[], name: string) {
  t.text(column).alter({ alterNullable: false, alterType: true });
  t.check(`${column} in (${values.map((v) => `'${v}'`).join(', ')})`, [], name);
}

export interface MigrationContext {
  dialect: Dialect;
  knex: Knex;
  /** A table of this module by its schema-qualified name, for foreign keys. */
  table(name: string): string;
}

/** A migration written with knex's schema builder, so that one definition serves both dialects. */
export abstract class SchemaMigration extends Migration {
  abstract build(schema: Knex.SchemaBuilder, ctx: MigrationContext): Knex.SchemaBuilder;

  override up() {
    const dialect: Dialect = this.config.get('driver') === PostgreSqlDriver ? 'postgresql' : 'sqlite';
    const schemaName = this.config.get('schema');
    const base = this.getKnex().schema;
    const builder = this.build(schemaName ? base.withSchema(schemaName) : base, {
      dialect,
      knex: this.getKnex(),
      table: (name) => (schemaName ? `${schemaName}.${name}` : name),
    });
    for (const q of builder.toSQL() as unknown as { sql: string }[]) this.addSql(q.sql);
  }
}

/** MikroORM constructs migrations with its own driver and config. */
export type MigrationClass = new (...args: any[]) => Migration;
