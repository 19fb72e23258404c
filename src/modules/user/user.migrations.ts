import type { Knex } from '@mikro-orm/knex';
import { type MigrationContext, SchemaMigration } from '../../kernel/persistence.js';

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

export const userMigrations = [
  { name: 'Migration20261127UserInitial', class: Migration20261127UserInitial },
  { name: 'Migration20261201UserKeysToKernel', class: Migration20261201UserKeysToKernel },
];
