import type { EntitySchema } from '@mikro-orm/core';
import Joi from 'joi';
import type { Registry } from 'prom-client';
import type { Clock } from './clock.js';
import type { Config, SettingsDeclaration } from './config.js';
import { registerErrorCodes } from './errors.js';
import type { Faults } from './faults.js';
import type { Idempotency } from './idempotency.js';
import type { JobDefinition } from './jobs.js';
import type { Logger } from './logger.js';
import type { Outbox } from './outbox.js';
import type { Database, MigrationClass } from './persistence.js';
import type { PortDefinition } from './ports.js';
import type { RateLimits } from './ratelimit.js';
import type { PortName, RequiredPorts } from './registry.js';
import type { ApiRouter } from './routing.js';

/** What the kernel hands a module when it starts: its database and the building blocks on it. */
export interface ModuleContext<R extends PortName = never> {
  config: Config;
  db: Database;
  log: Logger;
  /** The ports this module declared in `requires`: in-process when loaded here, HTTP otherwise. */
  ports: RequiredPorts<R>;
  /** The process's Prometheus registry, for the module's business counters. */
  metrics: Registry;
  /** The one clock for every TTL. */
  clock: Clock;
  /** At-most-once application of an idempotency key, on this module's database. */
  idempotency: Idempotency;
  /** Work to do after a commit (webhooks, SMS), delivered with retries from this module's database. */
  outbox: Outbox;
  /** Test-only fault points (FAULT_INJECTION). */
  faults: Faults;
  /** Request limits on this module's database, shared by every instance of the slice. */
  limits: RateLimits;
}

/** What a started module gives back to the kernel. */
export interface ModuleInstance {
  routers: ApiRouter[];
  /** The in-process implementation of this module's port, if it has one. */
  port?: object;
  /** Periodic work (sweepers, recovery); the kernel schedules, scopes, leases and stops it. */
  jobs?: JobDefinition[];
  /**
   * Runs once the whole process is wired (all ports available): seeding, first admin, … It may
   * return lines for the start banner, e.g. the demo accounts this start has just created.
   */
  afterStart?: (() => Promise<void>) | (() => Promise<string[]>);
  stop?: () => Promise<void>;
}

export interface ModuleDefinition<R extends PortName = PortName> {
  name: string;
  defaultPort: number;
  entities: EntitySchema[];
  migrations: { name: string; class: MigrationClass }[];
  /** The port this module offers other modules (method list and argument schemas). */
  port?: PortDefinition;
  /** The ports of other modules this one calls; its start receives exactly these. */
  requires?: readonly R[];
  /** The module's error codes and their HTTP statuses; the kernel merges them into its one table. */
  errors?: Record<string, number>;
  /** The module's settings: joi schema, defaults and environment variables. */
  settings?: SettingsDeclaration;
  start(ctx: ModuleContext<R>): Promise<ModuleInstance> | ModuleInstance;
}

const definitionSchema = Joi.object({
  name: Joi.string()
    .pattern(/^[a-z]+$/)
    .required(),
  defaultPort: Joi.number().integer().min(1).max(65535).required(),
  entities: Joi.array().required(),
  migrations: Joi.array()
    .items(Joi.object({ name: Joi.string().required(), class: Joi.function().required() }))
    .required(),
  port: Joi.object({ name: Joi.string().required(), methods: Joi.object().required() }),
  requires: Joi.array().items(Joi.string()),
  errors: Joi.object().pattern(/^[A-Z][A-Z0-9_]*$/, Joi.number().integer().min(400).max(599)),
  settings: Joi.object({ keys: Joi.object().required(), env: Joi.object().required(), production: Joi.object() }),
  start: Joi.function().required(),
});

/** Declares a module; the definition is checked at load time and any fault names the module. */
export function defineModule<const R extends PortName = never>(def: ModuleDefinition<R>): ModuleDefinition<R> {
  const { error } = definitionSchema.validate(def);
  if (error) throw new Error(`Module "${def?.name ?? '?'}" is not a valid module definition: ${error.message}`);
  if (def.errors) registerErrorCodes(def.name, def.errors);
  return def;
}
