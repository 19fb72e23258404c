import type { Knex } from '@mikro-orm/knex';
import { type MigrationContext, SchemaMigration } from '../../kernel/persistence.js';

export class Migration20261127EventInitial extends SchemaMigration {
  build(schema: Knex.SchemaBuilder, { knex, table }: MigrationContext) {
    const time = (t: Knex.CreateTableBuilder, name: string) => t.datetime(name, { useTz: true });
    return schema
      .createTable('venues', (t) => {
        t.uuid('id').primary();
        t.string('name', 200).notNullable();
        t.string('address', 500).notNullable();
        t.integer('total_halls').notNullable();
        time(t, 'created_at').notNullable();
      })
      .createTable('events', (t) => {
        t.uuid('id').primary();
        t.uuid('venue_id').notNullable().references('id').inTable(table('venues'));
        t.string('name', 200).notNullable();
        t.string('hall_id', 50).notNullable();
        time(t, 'event_date').notNullable().index('events_event_date_idx');
        t.text('pricing_tiers').notNullable();
        t.integer('total_seats').notNullable();
        time(t, 'created_at').notNullable();
      })
      .createTable('seats', (t) => {
        t.uuid('id').primary();
        t.uuid('event_id').notNullable().references('id').inTable(table('events'));
        t.integer('row_index').notNullable();
        t.string('row_number', 10).notNullable();
        t.integer('seat_number').notNullable();
        t.string('category', 20).notNullable();
        t.integer('price').notNullable();
        t.string('status', 12).notNullable();
        t.uuid('owner_user_id').nullable();
        t.uuid('held_by_user_id').nullable();
        t.uuid('hold_order_id').nullable();
        time(t, 'held_until').nullable();
        t.uuid('sold_order_id').nullable();
        t.integer('price_paid').nullable();
        time(t, 'checked_in_at').nullable();
        time(t, 'created_at').notNullable();
        time(t, 'updated_at').notNullable();
        // The seat map reads in this order; the pair is also what makes a seat unique in its event.
        t.unique(['event_id', 'row_index', 'seat_number'], { indexName: 'seats_event_row_seat_uq' });
        // available_seats counts by event and status.
        t.index(['event_id', 'status'], 'seats_event_status_idx');
        // "My tickets" reads by owner.
        t.index(['owner_user_id'], 'seats_owner_idx');
        // The sweeper looks only at held seats by expiry.
        t.index(['held_until'], 'seats_held_until_idx', { predicate: knex.whereRaw("status = 'HELD'") });
      })
      .createTable('scan_logs', (t) => {
        t.uuid('id').primary();
        t.uuid('event_id').nullable();
        t.uuid('seat_id').notNullable();
        t.uuid('staff_user_id').notNullable();
        t.string('result', 12).notNullable();
        t.string('presented_hall', 50).notNullable();
        t.string('expected_hall', 50).nullable();
        time(t, 'scanned_at').notNullable();
        t.index(['event_id', 'scanned_at'], 'scan_logs_event_scanned_idx');
      });
  }
}

export const eventMigrations = [{ name: 'Migration20261127EventInitial', class: Migration20261127EventInitial }];
