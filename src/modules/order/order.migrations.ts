import type { Knex } from '@mikro-orm/knex';
import { timestamp } from '../../kernel/migration.js';
import { type MigrationContext, SchemaMigration } from '../../kernel/persistence.js';

const ORDER_STATUSES = ['PENDING', 'CONFIRMED', 'EXPIRED', 'FAILED', 'REFUNDED'];
const TRANSFER_STATUSES = ['INITIATED', 'PENDING_OTP', 'COMPLETED', 'DISPUTED', 'REVERSED', 'FAILED'];
const TRANSFER_INITIATORS = ['SELLER', 'BUYER'];

/** Text limited to a list of values by a named check: how the entities' enums are stored. */
function oneOf(t: Knex.CreateTableBuilder, table: string, column: string, values: string[]) {
  t.text(column).notNullable();
  t.check(`${column} in (${values.map((v) => `'${v}'`).join(', ')})`, [], `${table}_${column}_check`);
}

/**
 * Orders, their seats and transfers, in the shape the entities describe from the start (primary
 * keys NOT NULL for SQLite, enums as checked text), so that no later migration has to rebuild them.
 */
export class Migration20261201OrderInitial extends SchemaMigration {
  build(schema: Knex.SchemaBuilder, { knex, table }: MigrationContext) {
    return schema
      .createTable('orders', (t) => {
        t.uuid('id').notNullable().primary();
        t.uuid('user_id').notNullable();
        t.uuid('event_id').notNullable();
        oneOf(t, 'orders', 'status', ORDER_STATUSES);
        t.integer('total').notNullable();
        timestamp(t, 'expires_at').notNullable();
        timestamp(t, 'confirmed_at').nullable();
        timestamp(t, 'created_at').notNullable();
        timestamp(t, 'updated_at').notNullable();
        // "My orders" reads a user's orders newest first.
        t.index(['user_id', 'created_at'], 'orders_user_created_idx');
        // The sweeper looks only at pending orders by expiry.
        t.index(['expires_at'], 'orders_pending_expires_idx', { predicate: knex.whereRaw("status = 'PENDING'") });
      })
      .createTable('order_seats', (t) => {
        t.uuid('order_id').notNullable().references('id').inTable(table('orders'));
        t.uuid('seat_id').notNullable();
        t.integer('position').notNullable();
        t.integer('price').notNullable();
        t.primary(['order_id', 'seat_id']);
        t.index(['seat_id'], 'order_seats_seat_idx');
      })
      .createTable('transfers', (t) => {
        t.uuid('id').notNullable().primary();
        t.uuid('seat_id').notNullable();
        t.uuid('order_id').nullable();
        t.uuid('seller_user_id').notNullable();
        t.uuid('buyer_user_id').notNullable();
        t.integer('credits_amount').notNullable();
        oneOf(t, 'transfers', 'status', TRANSFER_STATUSES);
        oneOf(t, 'transfers', 'initiated_by', TRANSFER_INITIATORS);
        t.string('dispute_reason', 500).nullable();
        t.integer('frozen_amount').nullable();
        timestamp(t, 'created_at').notNullable();
        timestamp(t, 'updated_at').notNullable();
        timestamp(t, 'completed_at').nullable();
        // At most one transfer of a seat under way at a time.
        t.unique(['seat_id'], {
          indexName: 'transfers_active_seat_uq',
          predicate: knex.whereRaw("status in ('INITIATED', 'PENDING_OTP')"),
        });
      });
  }
}

/** A transfer under way ends when its codes run out: it carries when that is. */
export class Migration20261202TransferExpiry extends SchemaMigration {
  build(schema: Knex.SchemaBuilder) {
    return schema.alterTable('transfers', (t) => {
      timestamp(t, 'expires_at').nullable();
    });
  }
}

export const orderMigrations = [
  { name: 'Migration20261201OrderInitial', class: Migration20261201OrderInitial },
  { name: 'Migration20261202TransferExpiry', class: Migration20261202TransferExpiry },
];
