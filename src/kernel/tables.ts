import { defineEntity, p } from '@mikro-orm/core';
import type { Knex } from '@mikro-orm/knex';
import { SchemaMigration, timestamp } from './migration.js';

/**
 * The kernel's tables, in every module's own database: idempotency keys (`once`), job leases,
 * the outbox and request limits. Made anew for each database, because MikroORM binds an entity schema to the
 * instance that discovers it.
 */
export function kernelEntities() {
  const IdempotencyKey = defineEntity({
    name: 'IdempotencyKey',
    tableName: 'idempotency_keys',
    properties: {
      key: p.string().length(200).primary(),
      op: p.string().length(40),
      result: p.text(),
      createdAt: p.datetime().index('idempotency_keys_created_at_idx'),
    },
  });
  const JobLease = defineEntity({
    name: 'JobLease',
    tableName: 'job_leases',
    properties: {
      name: p.string().length(100).primary(),
      holder: p.string().length(100),
      expiresAt: p.datetime(),
    },
  });
  const OutboxMessage = defineEntity({
    name: 'OutboxMessage',
    tableName: 'outbox',
    properties: {
      id: p.uuid().primary(),
      topic: p.string().length(60),
      payload: p.text(),
      attempts: p.integer(),
      nextAttemptAt: p.datetime().index('outbox_next_attempt_at_idx'),
      expiresAt: p.datetime().nullable(),
      lastError: p.string().length(500).nullable(),
      createdAt: p.datetime(),
    },
  });
  const RateLimit = defineEntity({
    name: 'RateLimit',
    tableName: 'rate_limits',
    properties: {
      key: p.string().length(200).primary(),
      windowStart: p.datetime(),
      hits: p.integer(),
    },
  });
  return [IdempotencyKey, JobLease, OutboxMessage, RateLimit];
}

export class Kernel20261201BuildingBlocks extends SchemaMigration {
  build(schema: Knex.SchemaBuilder) {
    return schema
      .createTable('idempotency_keys', (t) => {
        t.string('key', 200).notNullable().primary();
        t.string('op', 40).notNullable();
        t.text('result').notNullable();
        timestamp(t, 'created_at').notNullable().index('idempotency_keys_created_at_idx');
      })
      .createTable('job_leases', (t) => {
        t.string('name', 100).notNullable().primary();
        t.string('holder', 100).notNullable();
        timestamp(t, 'expires_at').notNullable();
      })
      .createTable('outbox', (t) => {
        t.uuid('id').notNullable().primary();
        t.string('topic', 60).notNullable();
        t.text('payload').notNullable();
        t.integer('attempts').notNullable();
        timestamp(t, 'next_attempt_at').notNullable().index('outbox_next_attempt_at_idx');
        timestamp(t, 'expires_at').nullable();
        t.string('last_error', 500).nullable();
        timestamp(t, 'created_at').notNullable();
      });
  }
}

/** Request limits counted in the database, so that every instance of a slice shares them (ratelimit.ts). */
export class Kernel20261202RateLimits extends SchemaMigration {
  build(schema: Knex.SchemaBuilder) {
    return schema.createTable('rate_limits', (t) => {
      t.string('key', 200).notNullable().primary();
      timestamp(t, 'window_start').notNullable();
      t.integer('hits').notNullable();
    });
  }
}

export const kernelMigrations = [
  { name: 'Kernel20261201BuildingBlocks', class: Kernel20261201BuildingBlocks },
  { name: 'Kernel20261202RateLimits', class: Kernel20261202RateLimits },
];
