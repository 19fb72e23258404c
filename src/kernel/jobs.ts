import { randomUUID } from 'node:crypto';
import type { Clock } from './clock.js';
import { type Logger, requestScope } from './logger.js';
import type { Database } from './persistence.js';

export interface JobScope {
  log: Logger;
  correlationId: string;
}

export interface JobDefinition {
  name: string;
  intervalMs: number;
  /** Run by one process at a time: a tick runs only while this process holds the job's lease. */
  leased?: boolean;
  /** Also tick once as soon as the scheduler starts (recovery of work a dead process left). */
  atStart?: boolean;
  run(scope: JobScope): Promise<unknown>;
}

/**
 * Leases: one row per job in the module's database with its holder and expiry. Taking one is one
 * conditional upsert (free, expired, or already ours); every tick renews it, and a holder that
 * dies stops renewing, so its lease runs out.
 */
export function createLeases(db: Database, clock: Clock, holder: string, ttlMs: number) {
  const leases = db.table('job_leases');
  return {
    async acquire(name: string): Promise<boolean> {
      const now = clock.now();
      const rows = await db.all(
        `insert into ${leases} as l (name, holder, expires_at) values (?, ?, ?)
         on conflict (name) do update set holder = excluded.holder, expires_at = excluded.expires_at
         where l.holder = excluded.holder or l.expires_at <= ? returning holder`,
        [name, holder, db.time(now + ttlMs), db.time(now)],
      );
      return rows.length > 0;
    },
    async release(name: string) {
      await db.all(`delete from ${leases} where name = ? and holder = ?`, [name, holder]);
    },
  };
}

interface Entry {
  module: string;
  job: JobDefinition;
  leases: ReturnType<typeof createLeases>;
  busy?: Promise<void>;
  again: boolean;
  timer?: NodeJS.Timeout;
}

/**
 * Runs the modules' background jobs. Each tick runs in its own scope: a correlation id on its
 * log lines and its own entity manager (the database's `em` forks once per scope).
 */
export function createScheduler(options: { log: Logger; clock: Clock; leaseMs: number }) {
  const holder = `${process.pid}:${randomUUID()}`;
  const entries = new Map<string, Entry>();
  const id = (module: string, name: string) => `${module}:${name}`;

  async function tick(entry: Entry) {
    const { module, job } = entry;
    const correlationId = `job-${randomUUID()}`;
    await requestScope.run({ correlationId, module }, async () => {
      const log = options.log.child({ module, job: job.name });
      try {
        if (job.leased && !(await entry.leases.acquire(job.name))) return;
        const started = performance.now();
        await job.run({ log, correlationId });
        log.debug({ holder, duration_ms: Math.round(performance.now() - started) }, 'job ran');
      } catch (err) {
        log.error({ err }, 'background job failed');
      }
    });
  }

  /** One tick now, or right after the one under way. */
  function trigger(entry: Entry): Promise<void> {
    if (entry.busy) {
      entry.again = true;
      return entry.busy;
    }
    entry.busy = (async () => {
      do {
        entry.again = false;
        await tick(entry);
      } while (entry.again);
    })().finally(() => {
      entry.busy = undefined;
    });
    return entry.busy;
  }

  return {
    holder,
    add(module: string, db: Database, job: JobDefinition) {
      const key = id(module, job.name);
      if (entries.has(key)) throw new Error(`Module "${module}" has two jobs named "${job.name}"`);
      entries.set(key, { module, job, again: false, leases: createLeases(db, options.clock, holder, options.leaseMs) });
    },
    start() {
      for (const entry of entries.values()) {
        entry.timer = setInterval(() => void trigger(entry), entry.job.intervalMs);
        entry.timer.unref();
        if (entry.job.atStart) void trigger(entry);
      }
    },
    /** Runs a job's tick now (tests, and work that should not wait for the next interval). */
    run(module: string, name: string): Promise<void> {
      const entry = entries.get(id(module, name));
      if (!entry) throw new Error(`No job "${name}" in module "${module}"`);
      return trigger(entry);
    },
    async stop() {
      for (const entry of entries.values()) clearInterval(entry.timer);
      await Promise.allSettled([...entries.values()].map((e) => e.busy));
      // A clean stop hands the leases on at once instead of letting them run out.
      await Promise.allSettled(
        [...entries.values()].filter((e) => e.job.leased).map((e) => e.leases.release(e.job.name)),
      );
    },
  };
}

export type Scheduler = ReturnType<typeof createScheduler>;
