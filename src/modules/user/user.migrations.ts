import type { Knex } from '@mikro-orm/knex';
import { limitTo, timestamp } from '../../kernel/migration.js';
import { type MigrationContext, SchemaMigration } from '../../kernel/persistence.js';
import { rebuildTables } from '../../kernel/rebuild.js';

export class Migration20261127UserInitial extends SchemaMigration {
  build(schema: Knex.SchemaBuilder) {
    return schema
      .createTable('users', (t) => {
        t.uuid('id').primary();
        t.string('email', 254).notNullable().unique();
        t.string('phone', 16).notNullable();
        t.string('password_hash', 255).notNullable();
        t.string('full_name', 200).nullable();
        t.string('role', 16).notNullable().defaultTo('customer');
        t.boolean('is_flagged').notNullable().defaultTo(false);
        t.integer('credit_balance').notNullable().defaultTo(0);
        t.integer('frozen_credits').notNullable().defaultTo(0);
        t.datetime('created_at', { useTz: true }).notNullable();
        t.datetime('updated_at', { useTz: true }).notNullable();
        t.check('credit_balance >= 0 AND frozen_credits >= 0', [], 'users_credits_not_negative');
      })
      .createTable('credit_transactions', (t) => {
        t.uuid('id').primary();
        t.uuid('user_id').notNullable();
        t.string('type', 16).notNullable();
        t.integer('amount').notNullable();
        t.integer('balance_after').notNullable();
        t.string('reference_id', 200).nullable();
        t.string('idempotency_key', 200).notNullable().unique();
        t.datetime('created_at', { useTz: true }).notNullable();
        t.index(['user_id', 'created_at'], 'credit_transactions_user_created_idx');
      })
      .createTable('sessions', (t) => {
        t.uuid('id').primary();
        t.uuid('user_id').notNullable().index();
        t.uuid('refresh_jti').notNullable();
        t.datetime('revoked_at', { useTz: true }).nullable();
        t.datetime('expires_at', { useTz: true }).notNullable();
        t.datetime('created_at', { useTz: true }).notNullable();
      })
      .createTable('operations', (t) => {
        t.string('key', 200).primary();
        t.string('op', 40).notNullable();
        t.text('result').notNullable();
        t.datetime('created_at', { useTz: true }).notNullable();
      })
      .createTable('otp_challenges', (t) => {
        t.uuid('id').primary();
        t.uuid('user_id').notNullable();
        t.string('purpose', 40).notNullable();
        t.string('reference_id', 200).notNullable();
        t.string('code_hash', 128).nullable();
        t.string('provider_sid', 200).nullable();
        t.datetime('expires_at', { useTz: true }).notNullable();
        t.integer('failures').notNullable().defaultTo(0);
        t.datetime('verified_at', { useTz: true }).nullable();
        t.datetime('created_at', { useTz: true }).notNullable();
        t.datetime('updated_at', { useTz: true }).notNullable();
        t.unique(['user_id', 'purpose', 'reference_id'], { indexName: 'otp_challenges_user_purpose_ref_uq' });
      })
      .createTable('payment_intents', (t) => {
        t.string('id', 255).primary();
        t.uuid('user_id').notNullable().index();
        t.integer('amount').notNullable();
        t.string('currency', 3).notNullable();
        t.string('status', 40).notNullable();
        t.datetime('credited_at', { useTz: true }).nullable();
        t.datetime('created_at', { useTz: true }).notNullable();
      });
  }
}

const ROLES = ['customer', 'staff', 'admin'];
const LEDGER_TYPES = ['TOPUP', 'PURCHASE', 'REFUND', 'TRANSFER_IN', 'TRANSFER_OUT', 'GRANT', 'REVERSAL'];

/**
 * Brings the tables to what the entities say (a test compares them): role and ledger type are
 * checked against their lists; on SQLite primary keys become NOT NULL (SQLite allows NULL in one
 * unless told) and integer defaults lose their quotes, which takes a rebuild of the tables.
 */
export class Migration20261201UserEntitiesAgree extends SchemaMigration {
  build(schema: Knex.SchemaBuilder, { dialect, knex }: MigrationContext) {
    if (dialect === 'postgresql') {
      return schema
        .alterTable('users', (t) => {
          limitTo(t, 'role', ROLES, 'users_role_check');
        })
        .alterTable('credit_transactions', (t) => {
          limitTo(t, 'type', LEDGER_TYPES, 'credit_transactions_type_check');
        });
    }
    const zero = knex.raw('0');
    return rebuildTables(schema, knex, [
      {
        name: 'users',
        columns: [
          'id',
          'email',
          'phone',
          'password_hash',
          'full_name',
          'role',
          'is_flagged',
          'credit_balance',
          'frozen_credits',
          'created_at',
          'updated_at',
        ],
        create(t) {
          t.uuid('id').notNullable().primary();
          t.string('email', 254).notNullable();
          t.string('phone', 16).notNullable();
          t.string('password_hash', 255).notNullable();
          t.string('full_name', 200).nullable();
          t.enu('role', ROLES).notNullable().defaultTo('customer');
          t.boolean('is_flagged').notNullable().defaultTo(knex.raw('false'));
          t.integer('credit_balance').notNullable().defaultTo(zero);
          t.integer('frozen_credits').notNullable().defaultTo(zero);
          timestamp(t, 'created_at').notNullable();
          timestamp(t, 'updated_at').notNullable();
          t.check('credit_balance >= 0 AND frozen_credits >= 0', [], 'users_credits_not_negative');
        },
        indexes: (t) => t.unique(['email'], { indexName: 'users_email_unique' }),
      },
      {
        name: 'credit_transactions',
        columns: ['id', 'user_id', 'type', 'amount', 'balance_after', 'reference_id', 'idempotency_key', 'created_at'],
        create(t) {
          t.uuid('id').notNullable().primary();
          t.uuid('user_id').notNullable();
          t.enu('type', LEDGER_TYPES).notNullable();
          t.integer('amount').notNullable();
          t.integer('balance_after').notNullable();
          t.string('reference_id', 200).nullable();
          t.string('idempotency_key', 200).notNullable();
          timestamp(t, 'created_at').notNullable();
        },
        indexes(t) {
          t.unique(['idempotency_key'], { indexName: 'credit_transactions_idempotency_key_unique' });
          t.index(['user_id', 'created_at'], 'credit_transactions_user_created_idx');
        },
      },
      {
        name: 'sessions',
        columns: ['id', 'user_id', 'refresh_jti', 'revoked_at', 'expires_at', 'created_at'],
        create(t) {
          t.uuid('id').notNullable().primary();
          t.uuid('user_id').notNullable();
          t.uuid('refresh_jti').notNullable();
          timestamp(t, 'revoked_at').nullable();
          timestamp(t, 'expires_at').notNullable();
          timestamp(t, 'created_at').notNullable();
        },
        indexes: (t) => t.index(['user_id'], 'sessions_user_id_index'),
      },
      {
        name: 'otp_challenges',
        columns: [
          'id',
          'user_id',
          'purpose',
          'reference_id',
          'code_hash',
          'provider_sid',
          'expires_at',
          'failures',
          'verified_at',
          'created_at',
          'updated_at',
        ],
        create(t) {
          t.uuid('id').notNullable().primary();
          t.uuid('user_id').notNullable();
          t.string('purpose', 40).notNullable();
          t.string('reference_id', 200).notNullable();
          t.string('code_hash', 128).nullable();
          t.string('provider_sid', 200).nullable();
          timestamp(t, 'expires_at').notNullable();
          t.integer('failures').notNullable().defaultTo(zero);
          timestamp(t, 'verified_at').nullable();
          timestamp(t, 'created_at').notNullable();
          timestamp(t, 'updated_at').notNullable();
        },
        indexes: (t) =>
          t.unique(['user_id', 'purpose', 'reference_id'], { indexName: 'otp_challenges_user_purpose_ref_uq' }),
      },
      {
        name: 'payment_intents',
        columns: ['id', 'user_id', 'amount', 'currency', 'status', 'credited_at', 'created_at'],
        create(t) {
          t.string('id', 255).notNullable().primary();
          t.uuid('user_id').notNullable();
          t.integer('amount').notNullable();
          t.string('currency', 3).notNullable();
          t.string('status', 40).notNullable();
          timestamp(t, 'credited_at').nullable();
          timestamp(t, 'created_at').notNullable();
        },
        indexes: (t) => t.index(['user_id'], 'payment_intents_user_id_index'),
      },
    ]);
  }
}

/** The idempotency keys move to the kernel's table (`once` is a kernel building block now), keeping every key. */
export class Migration20261201UserKeysToKernel extends SchemaMigration {
  build(schema: Knex.SchemaBuilder, { knex, table }: MigrationContext) {
    return schema
      .raw(
        knex
          .raw('insert into ?? (key, op, result, created_at) select key, op, result, created_at from ??', [
            table('idempotency_keys'),
            table('operations'),
          ])
          .toQuery(),
      )
      .dropTable('operations');
  }
}

/**
 * What other slices need to keep a view of sessions instead of asking per request: when a user's
 * role last changed, and an index for recent revocations and role changes.
 */
export class Migration20261202SessionChanges extends SchemaMigration {
  build(schema: Knex.SchemaBuilder) {
    return schema
      .alterTable('users', (t) => {
        timestamp(t as unknown as Knex.CreateTableBuilder, 'role_changed_at').nullable();
        t.index(['role_changed_at'], 'users_role_changed_idx');
      })
      .alterTable('sessions', (t) => {
        t.index(['revoked_at'], 'sessions_revoked_idx');
      });
  }
}

export const userMigrations = [
  { name: 'Migration20261127UserInitial', class: Migration20261127UserInitial },
  { name: 'Migration20261201UserEntitiesAgree', class: Migration20261201UserEntitiesAgree },
  { name: 'Migration20261201UserKeysToKernel', class: Migration20261201UserKeysToKernel },
  { name: 'Migration20261202SessionChanges', class: Migration20261202SessionChanges },
];
