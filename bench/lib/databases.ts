import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { Kind } from './settings.js';

export interface BenchDb {
  kind: Kind;
  /** What the server and the baseline need to find it. */
  env: Record<string, string>;
  /** Scratch directory: SQLite files (SQLite), process logs (both). */
  dir: string;
  version(): Promise<string>;
  /**
   * Every held seat back to AVAILABLE. With `settle`, the seats table is also rebuilt compact
   * (VACUUM; VACUUM FULL on PostgreSQL) and checkpointed, so that each measured run starts from the
   * layout of a freshly created event and not from the slack its predecessors left.
   */
  reset(settle?: boolean): Promise<number>;
  held(): Promise<number>;
  /**
   * Rows of a read on one module's database (`baseline` for the sale baseline's own tables):
   * `{name}` in the SQL is that module's table `name`, `?` a parameter.
   */
  select<T>(module: string, sql: string, params?: unknown[]): Promise<T[]>;
  /** A write on one module's database, as `select` writes its SQL; answers the rows it changed. */
  exec(module: string, sql: string, params?: unknown[]): Promise<number>;
  drop(): Promise<void>;
}

/** `{name}` to the quoted table name, and `?` to PostgreSQL's `$n`. */
function render(sql: string, table: (name: string) => string, numbered: boolean): string {
  let n = 0;
  const tables = sql.replace(/\{(\w+)\}/g, (_, name: string) => table(name));
  return numbered ? tables.replace(/\?/g, () => `$${++n}`) : tables;
}

const RESET_SET = `status = 'AVAILABLE', held_by_user_id = null, hold_order_id = null, held_until = null`;

export function sqliteDb(): BenchDb {
  const dir = mkdtempSync(join(os.tmpdir(), 'tr-bench-'));
  const withDb = <T>(fn: (db: InstanceType<typeof Database>) => T): T => {
    const db = new Database(join(dir, 'event.sqlite'), { fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      return fn(db);
    } finally {
      db.close();
    }
  };
  return {
    kind: 'sqlite',
    env: { DATA_DIR: dir },
    dir,
    version: async () =>
      `SQLite ${withDb((db) => (db.prepare('select sqlite_version() as v').get() as { v: string }).v)} (better-sqlite3, WAL, synchronous=NORMAL)`,
    reset: async (settle = false) =>
      withDb((db) => {
        const { changes } = db.prepare(`update "seats" set ${RESET_SET} where status = 'HELD'`).run();
        if (settle) db.exec('vacuum');
        db.pragma('wal_checkpoint(TRUNCATE)');
        return changes;
      }),
    held: async () =>
      withDb((db) => (db.prepare(`select count(*) as n from "seats" where status = 'HELD'`).get() as { n: number }).n),
    async select<T>(module: string, sql: string, params: unknown[] = []) {
      const db = new Database(join(dir, `${module}.sqlite`), { fileMustExist: true, readonly: true });
      try {
        return db.prepare(render(sql, (name) => `"${name}"`, false)).all(...params) as T[];
      } finally {
        db.close();
      }
    },
    async exec(module: string, sql: string, params: unknown[] = []) {
      const db = new Database(join(dir, `${module}.sqlite`), { fileMustExist: true });
      try {
        db.pragma('busy_timeout = 5000');
        return db.prepare(render(sql, (name) => `"${name}"`, false)).run(...params).changes;
      } finally {
        db.close();
      }
    },
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function postgresDb(serverUrl: string): Promise<BenchDb> {
  const name = `tr_bench_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const onServer = async <T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
  await onServer(serverUrl, (c) => c.query(`create database ${name}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const withClient = <T>(fn: (c: pg.Client) => Promise<T>) => onServer(url.toString(), fn);
  const dir = mkdtempSync(join(os.tmpdir(), 'tr-bench-'));
  return {
    kind: 'postgres',
    env: { DATABASE_URL: url.toString(), DATA_DIR: dir },
    dir,
    version: () =>
      withClient(async (c) => {
        const { rows } = await c.query<{ v: string; fsync: string; sc: string }>(
          `select current_setting('server_version') as v, current_setting('fsync') as fsync,
             current_setting('synchronous_commit') as sc`,
        );
        const [{ v, fsync, sc }] = rows;
        return `PostgreSQL ${v} (fsync=${fsync}, synchronous_commit=${sc}; a pool of 10 connections in both servers)`;
      }),
    reset: (settle = false) =>
      withClient(async (c) => {
        const { rowCount } = await c.query(`update "event"."seats" set ${RESET_SET} where status = 'HELD'`);
        if (settle) {
          // No dead tuples or slack, fresh statistics and no checkpoint owed.
          await c.query('vacuum (full, analyze) "event"."seats"');
          await c.query('checkpoint').catch(() => undefined);
        }
        return rowCount ?? 0;
      }),
    held: () =>
      withClient(
        async (c) =>
          Number((await c.query(`select count(*) as n from "event"."seats" where status = 'HELD'`)).rows[0].n) || 0,
      ),
    select: <T>(module: string, sql: string, params: unknown[] = []) =>
      withClient(
        async (c) =>
          (
            await c.query(
              render(sql, (name) => `"${module}"."${name}"`, true),
              params,
            )
          ).rows as T[],
      ),
    exec: (module: string, sql: string, params: unknown[] = []) =>
      withClient(
        async (c) =>
          (
            await c.query(
              render(sql, (name) => `"${module}"."${name}"`, true),
              params,
            )
          ).rowCount ?? 0,
      ),
    async drop() {
      await onServer(serverUrl, (c) => c.query(`drop database if exists ${name} with (force)`));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The PostgreSQL server to use, or why there is none. */
export function postgresServer(): { url: string } | { reason: string } {
  const given = process.env.BENCH_DATABASE_URL || process.env.DATABASE_URL;
  if (given) return { url: given };
  const probe = spawnSync('pg_isready', ['-q', '-h', '127.0.0.1'], { stdio: 'ignore' });
  if (probe.error) return { reason: 'no DATABASE_URL or BENCH_DATABASE_URL, and pg_isready is not installed' };
  if (probe.status !== 0) {
    return { reason: 'no DATABASE_URL or BENCH_DATABASE_URL, and nothing accepts connections on 127.0.0.1:5432' };
  }
  return { url: 'postgres://postgres@127.0.0.1:5432/test' };
}
