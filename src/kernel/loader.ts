import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { Faults } from './faults.js';
import { createIdempotency } from './idempotency.js';
import type { Scheduler } from './jobs.js';
import type { Logger } from './logger.js';
import type { createMetrics } from './metrics.js';
import type { ModuleDefinition, ModuleInstance } from './module.js';
import { createOutbox } from './outbox.js';
import { type Database, openDatabase } from './persistence.js';
import type { PortImpl } from './ports.js';
import { createRateLimits } from './ratelimit.js';
import type { PortRegistry } from './registry.js';

/** The modules MODULES names; an unknown name stops the start, listing the known ones. */
export function selectModules(all: ModuleDefinition[], selection: string): ModuleDefinition[] {
  if (selection === 'all') return all;
  const names = selection.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!all.some((m) => m.name === name)) {
      throw new Error(`Unknown module "${name}" in MODULES; known modules: ${all.map((m) => m.name).join(', ')}`);
    }
  }
  return all.filter((m) => names.includes(m.name));
}

export interface Wiring {
  config: Config;
  log: Logger;
  clock: Clock;
  ports: PortRegistry;
  jobs: Scheduler;
  faults: Faults;
  metrics: ReturnType<typeof createMetrics>;
}

/**
 * Opens each module's database, builds the kernel's blocks on it, starts the module and
 * registers its port and jobs (the kernel's own jobs first). A failed start closes what opened.
 */
export async function startModules(loaded: ModuleDefinition[], w: Wiring) {
  const databases = new Map<string, Database>();
  const instances = new Map<string, ModuleInstance>();
  try {
    for (const def of loaded) {
      const db = await openDatabase({
        module: def.name,
        entities: def.entities,
        migrations: def.migrations,
        config: w.config,
      });
      databases.set(def.name, db);
      const log = w.log.child({ module: def.name });
      const outbox = createOutbox(db, {
        clock: w.clock,
        log,
        secret: w.config.jwtSecret,
        intervalMs: w.config.sweepIntervalMs,
      });
      const idempotency = createIdempotency(db, w.clock);
      const limits = createRateLimits(db, w.clock);
      const instance = await def.start({
        config: w.config,
        db,
        log,
        ports: w.ports.forModule(def),
        metrics: w.metrics.registry,
        clock: w.clock,
        idempotency,
        outbox,
        faults: w.faults,
        limits,
      });
      instances.set(def.name, instance);
      if (instance.port) w.ports.serve(def, instance.port as PortImpl);
      // A minute at the default sweep interval; the retention itself is a day.
      const purge = {
        name: 'idempotency-purge',
        intervalMs: w.config.sweepIntervalMs * 60,
        leased: true,
        run: idempotency.purge,
      };
      const ended = { name: 'rate-limit-purge', intervalMs: 60_000, leased: true, run: limits.purge };
      for (const job of [outbox.job, purge, ended, ...(instance.jobs ?? [])]) w.jobs.add(def.name, db, job);
    }
  } catch (err) {
    await Promise.allSettled([...databases.values()].map((db) => db.close()));
    throw err;
  }
  return { databases, instances };
}
