import type { EntitySchema } from '@mikro-orm/core';
import Joi from 'joi';
import type { Registry } from 'prom-client';
import type { Config } from './config.js';
import type { Logger } from './logger.js';
import type { Database, MigrationClass } from './persistence.js';
import type { PortDefinition, Ports } from './ports.js';
import type { ApiRouter } from './routing.js';

/** What the kernel hands a module when it starts. */
export interface ModuleContext {
  config: Config;
  db: Database;
  log: Logger;
  /** Ports of the other modules: in-process when loaded here, HTTP adapters otherwise. */
  ports: Ports;
  /** The process's Prometheus registry, for the module's business counters. */
  metrics: Registry;
}

/** What a started module gives back to the kernel. */
export interface ModuleInstance {
  routers: ApiRouter[];
  /** The in-process implementation of this module's port, if it has one. */
  port?: object;
  /** Periodic work (sweepers); the kernel schedules and stops them. */
  jobs?: { name: string; intervalMs: number; run: () => Promise<unknown> }[];
  /**
   * Runs once the whole process is wired (all ports available): seeding, first admin, … It may
   * return lines for the start banner, e.g. the demo accounts this start has just created.
   */
  afterStart?: (() => Promise<void>) | (() => Promise<string[]>);
  stop?: () => Promise<void>;
}

export interface ModuleDefinition {
  name: string;
  defaultPort: number;
  entities: EntitySchema[];
  migrations: { name: string; class: MigrationClass }[];
  /** The port this module offers other modules (method list and argument schemas). */
  port?: PortDefinition;
  /** The ports of other modules this one calls. */
  requires?: string[];
  start(ctx: ModuleContext): Promise<ModuleInstance> | ModuleInstance;
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
  start: Joi.function().required(),
});

/** Declares a module; the definition is checked at load time and any fault names the module. */
export function defineModule<T extends ModuleDefinition>(def: T): T {
  const { error } = definitionSchema.validate(def);
  if (error) throw new Error(`Module "${def?.name ?? '?'}" is not a valid module definition: ${error.message}`);
  return def;
}
