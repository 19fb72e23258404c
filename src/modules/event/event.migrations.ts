import type { Knex } from '@mikro-orm/knex';
import { limitTo, timestamp } from '../../kernel/migration.js';
import { type MigrationContext, SchemaMigration } from '../../kernel/persistence.js';
import { rebuildTables } from '../../kernel/rebuild.js';

export class Migration20261127EventInitial extends SchemaMigration {
  build(schema: Knex.SchemaBuilder, { knex, table }: MigrationContext) {
    return schema
      .createTable('venues', (t) => {
        t.uuid('id').primary();
        t.string('name', 200).notNullable();
        t.string('address', 500).notNullable();
        t.integer('total_halls').notNullable();
        timestamp(t, 'created_at').notNullable();
      })
      .createTable('events', (t) => {
        t.uuid('id').primary();
        t.uuid('venue_id').notNullable().references('id').inTable(table('venues'));
        t.string('name', 200).notNullable();
        t.string('hall_id', 50).notNullable();
        timestamp(t, 'event_date').notNullable().index('events_event_date_idx');
        t.text('pricing_tiers').notNullable();
        t.integer('total_seats').notNullable();
        timestamp(t, 'created_at').notNullable();
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
        timestamp(t, 'held_until').nullable();
        t.uuid('sold_order_id').nullable();
        t.integer('price_paid').nullable();
        timestamp(t, 'checked_in_at').nullable();
        timestamp(t, 'created_at').notNullable();
        timestamp(t, 'updated_at').notNullable();
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
        timestamp(t, 'scanned_at').notNullable();
        t.index(['event_id', 'scanned_at'], 'scan_logs_event_scanned_idx');
      });
  }
}

const SEAT_STATUSES = ['AVAILABLE', 'HELD', 'SOLD', 'CHECKED_IN'];
const SCAN_RESULTS = ['SUCCESS', 'DUPLICATE', 'UNPAID', 'NOT_FOUND', 'WRONG_HALL', 'EXPIRED', 'NOT_OWNER'];

/**
 * Brings the tables to what the entities say (a test compares them): seat status and scan result
 * are checked against their lists; on SQLite primary keys become NOT NULL (SQLite allows NULL in
 * one unless told), which takes a rebuild of the tables.
 */
export class Migration20261201EventEntitiesAgree extends SchemaMigration {
  build(schema: Knex.SchemaBuilder, { dialect, knex }: MigrationContext) {
    if (dialect === 'postgresql') {
      return schema
        .alterTable('seats', (t) => {
          limitTo(t, 'status', SEAT_STATUSES, 'seats_status_check');
        })
        .alterTable('scan_logs', (t) => {
          limitTo(t, 'result', SCAN_RESULTS, 'scan_logs_result_check');
        });
    }
    return rebuildTables(schema, knex, [
      {
        name: 'venues',
        columns: ['id', 'name', 'address', 'total_halls', 'created_at'],
        create(t) {
          t.uuid('id').notNullable().primary();
          t.string('name', 200).notNullable();
          t.string('address', 500).notNullable();
          t.integer('total_halls').notNullable();
          timestamp(t, 'created_at').notNullable();
        },
      },
      {
        name: 'events',
        columns: ['id', 'venue_id', 'name', 'hall_id', 'event_date', 'pricing_tiers', 'total_seats', 'created_at'],
        create(t, ref) {
          t.uuid('id').notNullable().primary();
          t.uuid('venue_id').notNullable().references('id').inTable(ref('venues'));
          t.string('name', 200).notNullable();
          t.string('hall_id', 50).notNullable();
          timestamp(t, 'event_date').notNullable();
          t.text('pricing_tiers').notNullable();
          t.integer('total_seats').notNullable();
          timestamp(t, 'created_at').notNullable();
        },
        indexes: (t) => t.index(['event_date'], 'events_event_date_idx'),
      },
      {
        name: 'seats',
        columns: [
          'id',
          'event_id',
          'row_index',
          'row_number',
          'seat_number',
          'category',
          'price',
          'status',
          'owner_user_id',
          'held_by_user_id',
          'hold_order_id',
          'held_until',
          'sold_order_id',
          'price_paid',
          'checked_in_at',
          'created_at',
          'updated_at',
        ],
        create(t, ref) {
          t.uuid('id').notNullable().primary();
          t.uuid('event_id').notNullable().references('id').inTable(ref('events'));
          t.integer('row_index').notNullable();
          t.string('row_number', 10).notNullable();
          t.integer('seat_number').notNullable();
          t.string('category', 20).notNullable();
          t.integer('price').notNullable();
          t.enu('status', SEAT_STATUSES).notNullable();
          t.uuid('owner_user_id').nullable();
          t.uuid('held_by_user_id').nullable();
          t.uuid('hold_order_id').nullable();
          timestamp(t, 'held_until').nullable();
          t.uuid('sold_order_id').nullable();
          t.integer('price_paid').nullable();
          timestamp(t, 'checked_in_at').nullable();
          timestamp(t, 'created_at').notNullable();
          timestamp(t, 'updated_at').notNullable();
        },
        indexes(t) {
          t.unique(['event_id', 'row_index', 'seat_number'], { indexName: 'seats_event_row_seat_uq' });
          t.index(['event_id', 'status'], 'seats_event_status_idx');
          t.index(['owner_user_id'], 'seats_owner_idx');
          t.index(['held_until'], 'seats_held_until_idx', { predicate: knex.whereRaw("status = 'HELD'") });
        },
      },
      {
        name: 'scan_logs',
        columns: [
          'id',
          'event_id',
          'seat_id',
          'staff_user_id',
          'result',
          'presented_hall',
          'expected_hall',
          'scanned_at',
        ],
        create(t) {
          t.uuid('id').notNullable().primary();
          t.uuid('event_id').nullable();
          t.uuid('seat_id').notNullable();
          t.uuid('staff_user_id').notNullable();
          t.enu('result', SCAN_RESULTS).notNullable();
          t.string('presented_hall', 50).notNullable();
          t.string('expected_hall', 50).nullable();
          timestamp(t, 'scanned_at').notNullable();
        },
        indexes: (t) => t.index(['event_id', 'scanned_at'], 'scan_logs_event_scanned_idx'),
      },
    ]);
  }
}

/** Multi-seat orders read held seats by holder (the hold limit) and by order (release, a repeated reserve). */
export class Migration20261201EventOrderHolds extends SchemaMigration {
  build(schema: Knex.SchemaBuilder, { knex }: MigrationContext) {
    return schema.alterTable('seats', (t) => {
      // With held_until in it, the hold-limit count reads only the user's live holds (PostgreSQL otherwise
      // plans it through seats_held_until_idx and reads every held seat of the table).
      t.index(['held_by_user_id', 'held_until'], 'seats_holder_idx', { predicate: knex.whereRaw("status = 'HELD'") });
      t.index(['hold_order_id'], 'seats_hold_order_idx', { predicate: knex.whereRaw("status = 'HELD'") });
    });
  }
}

export const eventMigrations = [
  { name: 'Migration20261127EventInitial', class: Migration20261127EventInitial },
  { name: 'Migration20261201EventEntitiesAgree', class: Migration20261201EventEntitiesAgree },
  { name: 'Migration20261201EventOrderHolds', class: Migration20261201EventOrderHolds },
];
