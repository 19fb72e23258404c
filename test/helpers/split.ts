import type { ExecutionContext } from 'ava';
import { type DbKind, freshDatabase } from './app.js';
import { freePort, type Server, spawnServer, waitForHealth } from './process.js';

/** The four slices, in the order `npm run start:split` starts them. */
export const SLICES = ['user', 'order', 'event', 'orchestrator'] as const;
export type Slice = (typeof SLICES)[number];

export const SPLIT_ADMIN = { email: 'split-admin@test.local', password: 'split-admin-pw-1' };

export interface Split {
  /** The `npm run start:split` process; its output holds every slice's lines. */
  server: Server;
  ports: Record<Slice, number>;
  url(slice: Slice): string;
  /** The PostgreSQL database the slices share (each its own schema), or undefined on SQLite. */
  databaseUrl?: string;
}

/**
 * The environment of four slices on free ports and a fresh database (a new PostgreSQL database,
 * dropped when the test ends; on SQLite the first process makes the data directory): every
 * slice's port and URL, and `base` (secrets, the admin, log level) on top.
 */
export async function splitEnv(t: ExecutionContext, kind: DbKind, base: Record<string, string>) {
  const db = kind === 'postgres' ? await freshDatabase('postgres') : undefined;
  t.teardown(() => db?.drop());
  const ports = Object.fromEntries(
    await Promise.all(SLICES.map(async (m) => [m, await freePort()] as const)),
  ) as Record<Slice, number>;
  const url = (m: Slice) => `http://127.0.0.1:${ports[m]}`;
  const env: Record<string, string> = { ...base, ...(db ? { DATABASE_URL: db.env.DATABASE_URL } : {}) };
  for (const m of SLICES) {
    env[`${m.toUpperCase()}_PORT`] = String(ports[m]);
    env[`${m.toUpperCase()}_URL`] = url(m);
  }
  return { ports, url, env, databaseUrl: db?.env.DATABASE_URL };
}

/**
 * `npm run start:split` on free ports and a fresh database, once every slice's /health is 200;
 * stopped and cleaned up when the test ends.
 */
export async function startSplit(t: ExecutionContext, kind: DbKind, env: Record<string, string> = {}): Promise<Split> {
  const {
    ports,
    url,
    env: all,
    databaseUrl,
  } = await splitEnv(t, kind, {
    JWT_SECRET: 'split-start-jwt-secret-0123456789',
    SERVICE_TOKEN: 'split-start-service-token-0123456789',
    ADMIN_EMAIL: SPLIT_ADMIN.email,
    ADMIN_PASSWORD: SPLIT_ADMIN.password,
    LOG_LEVEL: 'info',
  });
  const server = spawnServer({ ...all, ...env }, { script: 'scripts/split.ts', group: true });
  t.teardown(() => server.cleanup());
  for (const m of SLICES) await waitForHealth(server, url(m), 60_000);
  return { server, ports, url, databaseUrl };
}

/** Four slices spawned one by one (not through start:split), so that one can be killed and started again. */
export interface Slices {
  url(slice: Slice): string;
  /** The environment every slice shares (ports, URLs, secrets, database). */
  env: Record<string, string>;
  /** The SQLite directory the slices share (made by the first one). */
  dataDir: string;
  /** The PostgreSQL database the slices share (each its own schema), or undefined on SQLite. */
  databaseUrl?: string;
  /** The current process of each slice. */
  running: Map<Slice, Server>;
  /**
   * Starts a slice again on the same data (its last process must have gone), with the shared
   * environment and `extra` on top; resolves with the process once its /health is 200.
   */
  restart(slice: Slice, extra?: Record<string, string>): Promise<Server>;
}

/** A slice's own environment on top of the shared one, or a function of the shared one (e.g. of its DATABASE_URL). */
export type SliceEnv = Record<string, string> | ((shared: Record<string, string>) => Record<string, string>);

/**
 * The four slices as four processes on a fresh database, each with `MODULES=<slice>`, the
 * environment of splitEnv (`base` on top) and its own `extra`; resolved once every /health is
 * 200 and killed when `t` ends (a test, or a file's hooks that collect teardowns). On SQLite the
 * first process makes the data directory and the others share it.
 */
export async function spawnSlices(
  t: Pick<ExecutionContext, 'teardown'>,
  kind: DbKind,
  base: Record<string, string>,
  extra: Partial<Record<Slice, SliceEnv>> = {},
): Promise<Slices> {
  // splitEnv asks only for the scope's teardown: a test's, or a file's hooks'.
  const { url, env, databaseUrl } = await splitEnv(t as ExecutionContext, kind, base);
  const all: Server[] = [];
  // The first one last: its cleanup removes the data directory.
  t.teardown(() => {
    for (const server of [...all].reverse()) server.cleanup();
  });
  const running = new Map<Slice, Server>();
  let dataDir: string | undefined;
  const spawn = (m: Slice, more: Record<string, string> = {}) => {
    const server = spawnServer({ ...env, MODULES: m, ...more }, dataDir ? { dataDir } : {});
    dataDir ??= server.dataDir;
    running.set(m, server);
    all.push(server);
    return server;
  };
  for (const m of SLICES) {
    const own = extra[m];
    spawn(m, typeof own === 'function' ? own(env) : own);
  }
  for (const m of SLICES) await waitForHealth(running.get(m) as Server, url(m), 60_000);
  return {
    url,
    env,
    dataDir: dataDir as string,
    databaseUrl,
    running,
    async restart(m, more = {}) {
      const server = spawn(m, more);
      await waitForHealth(server, url(m), 60_000);
      return server;
    },
  };
}
