import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import pg from 'pg';
import { createApp, loadAppConfig } from '../../src/app.js';
import type { Clock } from '../../src/kernel/clock.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { listen, type Running } from '../../src/kernel/server.js';
import { startSplitApp } from './split-app.js';

export type DbKind = 'sqlite' | 'postgres';
/** One process with every module, or the four modules as four processes behind one edge. */
export type Shape = 'single' | 'split';
/** Where a scenario runs: a database in one process (`sqlite`), or in four (`sqlite split`). */
export type Target = DbKind | `${DbKind} split`;

/** PostgreSQL server for tests: TEST_DATABASE_URL, else DATABASE_URL; absent → SQLite only. */
export const PG_URL = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || '';

/** The databases every suite runs on: SQLite always, PostgreSQL when one is configured. */
export const DATABASES: DbKind[] = PG_URL ? ['sqlite', 'postgres'] : ['sqlite'];

/** The shapes the scenario suite runs in: both, unless TEST_SHAPES names one (`single` or `split`). */
export const SHAPES: Shape[] = (process.env.TEST_SHAPES || 'single,split')
  .split(',')
  .filter((s): s is Shape => s === 'single' || s === 'split');

/** The scenario suite's targets: every database in every shape. */
export const TARGETS: Target[] = SHAPES.flatMap((shape) =>
  DATABASES.map((kind): Target => (shape === 'single' ? kind : `${kind} split`)),
);

export const dbOf = (target: Target): DbKind => target.split(' ')[0] as DbKind;
export const shapeOf = (target: Target): Shape => (target.endsWith(' split') ? 'split' : 'single');

export interface TestDb {
  env: Record<string, string>;
  drop(): Promise<void>;
}

/** A fresh, empty database: a temporary directory for SQLite, a new database on PostgreSQL. */
export async function freshDatabase(kind: DbKind): Promise<TestDb> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'tr-test-'));
    return {
      env: { DATA_DIR: dir, DATABASE_URL: '' },
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `tr_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString(), DATA_DIR: join(tmpdir(), name) },
    async drop() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export interface Response<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

export interface TestApp {
  kind: DbKind;
  shape: Shape;
  url: string;
  /** Every process's own base URL (one in one process, four when split): /metrics is per process. */
  sliceUrls: string[];
  kernel: Kernel;
  running: Running;
  env: Record<string, string>;
  request<T = any>(
    method: string,
    path: string,
    options?: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string },
  ): Promise<Response<T>>;
  close(): Promise<void>;
}

export async function request<T = any>(
  base: string,
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string } = {},
): Promise<Response<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  return answer<T>(await fetch(`${base}${path}`, { method, headers, body }));
}

/** A fetch answer with its body read: parsed as JSON when it is JSON, as text otherwise. */
export async function answer<T = any>(res: globalThis.Response): Promise<Response<T>> {
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: res.status, body: parsed as T, headers: res.headers };
}

export const TEST_ADMIN = { email: 'root@test.local', password: 'root-password-1' };

/**
 * Boots the real kernel (all modules unless MODULES says otherwise) on a fresh database; for a
 * split target, the four slices as processes behind one edge (split-app.ts).
 */
export async function startApp(
  target: Target,
  env: Record<string, string> = {},
  options: { clock?: Clock } = {},
): Promise<TestApp> {
  const kind = dbOf(target);
  if (shapeOf(target) === 'split') return startSplitApp(kind, env, options);
  const db = await freshDatabase(kind);
  const fullEnv = {
    NODE_ENV: 'test',
    ADMIN_EMAIL: TEST_ADMIN.email,
    ADMIN_PASSWORD: TEST_ADMIN.password,
    ...db.env,
    ...env,
  };
  const config = loadAppConfig(fullEnv);
  const kernel = await createApp(config, options);
  const running = await listen(kernel, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${running.port}`;
  return {
    kind,
    shape: 'single',
    url,
    sliceUrls: [url],
    kernel,
    running,
    env: fullEnv,
    request: (method, path, options) => request(url, method, path, options),
    async close() {
      await running.close();
      await db.drop();
    },
  };
}

/**
 * One app for a whole test file on one database: started before its tests, closed after them.
 * The returned object forwards to the app once it has started, so tests use it like a TestApp.
 */
export function sharedApp(
  kind: Target,
  options: { env?: Record<string, string>; clock?: Clock; ready?: (app: TestApp) => Promise<void> } = {},
): TestApp {
  let app: TestApp | undefined;
  // ava runs a file's before hooks concurrently, so whatever needs the app happens in this one.
  test.before(async () => {
    app = await startApp(kind, options.env, { clock: options.clock });
    await options.ready?.(app);
  });
  test.after.always(() => app?.close());
  return late(() => app, 'the shared app');
}

/** An object that forwards to one made later (in a before hook), so tests can name it up front. */
export function late<T extends object>(get: () => T | undefined, what: string): T {
  return new Proxy({} as T, {
    get(_, key) {
      const target = get();
      if (!target) throw new Error(`${what} is used before its test.before hook ran`);
      return target[key as keyof T];
    },
  });
}
