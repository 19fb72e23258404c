import type { Knex } from '@mikro-orm/knex';
import { timestamp } from '../../kernel/migration.js';
import { type MigrationContext, SchemaMigration } from '../../kernel/persistence.js';
import { rebuildTables } from '../../kernel/rebuild.js';

const KINDS = ['reserve', 'pay', 'cancel'];
const STATUSES = ['RUNNING', 'DONE', 'FAILED', 'COMPENSATED'];

export class Migration20261201OrchestratorInitial extends SchemaMigration {
  build(schema: Knex.SchemaBuilder, { dialect, knex }: MigrationContext) {
    const running = knex.whereRaw("status = 'RUNNING'");
    // As the entities' enums are stored: text with a named check on PostgreSQL, SQLite's enum otherwise.
    const oneOf = (t: Knex.CreateTableBuilder, column: string, values: string[]) => {
      if (dialect === 'sqlite') return t.enu(column, values).notNullable();
      t.text(column).notNullable();
      return t.check(`${column} in (${values.map((v) => `'${v}'`).join(', ')})`, [], `sagas_${column}_check`);
    };
    return schema
      .createTable('sagas', (t) => {
        t.uuid('id').notNullable().primary();
        oneOf(t, 'kind', KINDS);
        t.uuid('order_id').notNullable();
        t.uuid('user_id').notNullable();
        t.string('step', 20).notNullable();
        oneOf(t, 'status', STATUSES);
        t.text('data').notNullable();
        t.string('holder', 64).notNullable();
        timestamp(t, 'lease_until').notNullable();
        t.string('request_key', 200).nullable().unique({ indexName: 'sagas_request_key_uq' });
        t.text('response').nullable();
        timestamp(t, 'created_at').notNullable();
        timestamp(t, 'updated_at').notNullable();
        t.unique(['order_id', 'kind'], { indexName: 'sagas_running_order_uq', predicate: running });
        t.index(['lease_until'], 'sagas_running_lease_idx', { predicate: running });
      })
      .createTable('purchase_approvals', (t) => {
        t.uuid('order_id').notNullable().primary();
        t.uuid('user_id').notNullable();
        timestamp(t, 'verified_at').notNullable();
      });
  }
}

const KINDS_WITH_TRANSFERS = [...KINDS, 'initiate', 'confirm', 'dispute'];
const SAGA_COLUMNS = [
  'id',
  'kind',
  'order_id',
  'user_id',
  'step',
  'status',
  'data',
  'holder',
  'lease_until',
  'request_key',
  'response',
  'created_at',
  'updated_at',
];

/**
 * The transfer sagas: three more kinds (SQLite keeps an enum's check in the table, so the table
 * is rebuilt there), and the transfer codes a party has verified on its own.
 */
export class Migration20261202TransferSagas extends SchemaMigration {
  build(schema: Knex.SchemaBuilder, { dialect, knex }: MigrationContext) {
    const running = () => knex.whereRaw("status = 'RUNNING'");
    const kinds = KINDS_WITH_TRANSFERS.map((k) => `'${k}'`).join(', ');
    const withKinds =
      dialect === 'postgresql'
        ? schema.alterTable('sagas', (t) => {
            t.dropChecks(['sagas_kind_check']);
            t.check(`kind in (${kinds})`, [], 'sagas_kind_check');
          })
        : rebuildTables(schema, knex, [
            {
              name: 'sagas',
              columns: SAGA_COLUMNS,
              create(t) {
                t.uuid('id').notNullable().primary();
                t.enu('kind', KINDS_WITH_TRANSFERS).notNullable();
                t.uuid('order_id').notNullable();
                t.uuid('user_id').notNullable();
                t.string('step', 20).notNullable();
                t.enu('status', STATUSES).notNullable();
                t.text('data').notNullable();
                t.string('holder', 64).notNullable();
                timestamp(t, 'lease_until').notNullable();
                t.string('request_key', 200).nullable();
                t.text('response').nullable();
                timestamp(t, 'created_at').notNullable();
                timestamp(t, 'updated_at').notNullable();
              },
              indexes(t) {
                t.unique(['request_key'], { indexName: 'sagas_request_key_uq' });
                t.unique(['order_id', 'kind'], { indexName: 'sagas_running_order_uq', predicate: running() });
                t.index(['lease_until'], 'sagas_running_lease_idx', { predicate: running() });
              },
            },
          ]);
    return withKinds.createTable('transfer_approvals', (t) => {
      t.uuid('transfer_id').notNullable();
      t.uuid('user_id').notNullable();
      timestamp(t, 'verified_at').notNullable();
      t.primary(['transfer_id', 'user_id']);
    });
  }
}

export const orchestratorMigrations = [
  { name: 'Migration20261201OrchestratorInitial', class: Migration20261201OrchestratorInitial },
  { name: 'Migration20261202TransferSagas', class: Migration20261202TransferSagas },
];
