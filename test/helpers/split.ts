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
