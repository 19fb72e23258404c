import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type Server, spawnServer, waitForHealth } from '../../test/helpers/process.js';
import type { BenchDb } from './databases.js';
import { JWT_SECRET, PROFILE_DIR, SERVICE_TOKEN, sleep } from './settings.js';

export interface Child {
  name: string;
  base: string;
  server: Server;
}

/** Every child still running, for the cleanup on an interruption. */
export const live = new Set<Child>();

const running = (s: Server) => s.child.exitCode === null && s.child.signalCode === null;

function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n') || '(no output)';
}

/**
 * A child on a free port, its output in `<db.dir>/<name>.log` as under a process manager (the
 * bench does not read a pipe while it loads the server). Ready once /health says the server's own
 * database is connected: the event slice alone answers 503 all the same, because the user module
 * (the session owner) it would reach is not running, and nothing the benchmark calls needs it.
 */
async function start(
  db: BenchDb,
  name: string,
  env: (port: number) => Record<string, string>,
  options: { script?: string; nodeArgs?: string[]; port?: number } = {},
): Promise<Child> {
  const port = options.port ?? (await freePort());
  const base = `http://127.0.0.1:${port}`;
  const server = spawnServer(
    { ...db.env, ...env(port) },
    { script: options.script, nodeArgs: options.nodeArgs, dataDir: db.dir, logFile: join(db.dir, `${name}.log`) },
  );
  const child = { name, base, server };
  live.add(child);
  void server.exited.then(() => live.delete(child));
  const connected = (status: number, body: unknown) =>
    status === 200 || (body as { checks?: { database?: string } } | undefined)?.checks?.database === 'connected';
  try {
    await waitForHealth(server, base, 60_000, connected);
  } catch (err) {
    await stopChild(child);
    throw new Error(`${name} did not become healthy: ${tail((err as Error).message)}`);
  }
  return child;
}

/** SIGTERM, then SIGKILL after 5 s. */
export async function stopChild({ server }: Child): Promise<void> {
  if (!running(server)) return;
  server.child.kill('SIGTERM');
  const killed = await Promise.race([server.exited.then(() => false), sleep(5000).then(() => true)]);
  if (killed) {
    server.cleanup();
    await server.exited;
  }
}

const serverEnv = { NODE_ENV: 'development', SEED_DEMO: 'false', JWT_SECRET, SERVICE_TOKEN };

/** The whole app (user and event) with an admin account, to create the events through the API. */
export const startSetupServer = (db: BenchDb, admin: { email: string; password: string }) =>
  start(db, `${db.kind}-setup`, (port) => ({
    ...serverEnv,
    MODULES: 'user,event',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
  }));

/** The event slice, as deployed on its own; with `profile`, a CPU profile lands in PROFILE_DIR. */
export function startEventServer(db: BenchDb, logLevel: string, profile: boolean): Promise<Child> {
  const nodeArgs: string[] = [];
  if (profile) {
    mkdirSync(PROFILE_DIR, { recursive: true });
    // Node's default file names: tsx's loader thread and each SQLite checkpointer thread write a
    // profile of their own beside the main thread's (the largest file).
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`);
  }
  return start(
    db,
    `${db.kind}-event-${logLevel}`,
    (port) => ({ ...serverEnv, MODULES: 'event', EVENT_PORT: String(port), LOG_LEVEL: logLevel }),
    { nodeArgs },
  );
}

export const startBaseline = (db: BenchDb) =>
  start(
    db,
    `${db.kind}-baseline`,
    (port) => ({ BASELINE_PORT: String(port), SERVICE_TOKEN, DATABASE_URL: db.env.DATABASE_URL ?? '' }),
    { script: 'bench/baseline.ts' },
  );

/**
 * The whole app for the purchase setup, with NODE_ENV=test: its cheap password hashes and lifted
 * rate limits let it register and log in thousands of buyers in seconds (a stored hash carries its
 * own cost, so the measured server checks nothing of it: it only verifies tokens). The access
 * tokens it hands out live two hours, longer than any bench.
 */
export const startPurchaseSetupServer = (
  db: BenchDb,
  admin: { email: string; password: string },
  { name = 'purchase-setup', env = {} }: { name?: string; env?: Record<string, string> } = {},
) =>
  start(db, `${db.kind}-${name}`, (port) => ({
    ...serverEnv,
    NODE_ENV: 'test',
    MODULES: 'all',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    ADMIN_EMAIL: admin.email,
    ADMIN_PASSWORD: admin.password,
    ACCESS_TOKEN_TTL_SECONDS: '7200',
    ...env,
  }));

/**
 * The whole app in one process (every module, as `npm start` runs it by default); with `profile`,
 * a CPU profile lands in PROFILE_DIR/<kind>-<name>. `env` adds to (or overrides) its environment.
 */
export function startAppServer(
  db: BenchDb,
  profile: boolean,
  { name = 'app', env = {} }: { name?: string; env?: Record<string, string> } = {},
): Promise<Child> {
  const nodeArgs: string[] = [];
  if (profile) {
    const dir = join(PROFILE_DIR, `${db.kind}-${name}`);
    mkdirSync(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  return start(
    db,
    `${db.kind}-${name}`,
    (port) => ({ ...serverEnv, MODULES: 'all', PORT: String(port), LOG_LEVEL: 'warn', ...env }),
    { nodeArgs },
  );
}

/** The flash sale's raw-SQL baseline (bench/sale-baseline.ts): its own tables in the same database. */
export const startSaleBaseline = (db: BenchDb) =>
  start(
    db,
    `${db.kind}-sale-baseline`,
    (port) => ({ BASELINE_PORT: String(port), DATABASE_URL: db.env.DATABASE_URL ?? '' }),
    { script: 'bench/sale-baseline.ts' },
  );

/**
 * One slice of the split shape (`MODULES=<module>`, LOG_LEVEL=warn) on the given port, with the
 * environment every slice shares (`env`: the ports and URLs of all four); with `profile`, a CPU
 * profile lands in PROFILE_DIR/<kind>-split-<module>. Ready once its own database is connected:
 * its /health also asks the slices it calls, which may not be up yet.
 */
export function startSlice(
  db: BenchDb,
  module: string,
  port: number,
  env: Record<string, string>,
  profile: boolean,
): Promise<Child> {
  const nodeArgs: string[] = [];
  if (profile) {
    const dir = join(PROFILE_DIR, `${db.kind}-split-${module}`);
    mkdirSync(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${dir}`);
  }
  return start(db, `${db.kind}-split-${module}`, () => ({ ...serverEnv, LOG_LEVEL: 'warn', ...env, MODULES: module }), {
    nodeArgs,
    port,
  });
}

/** User and system CPU seconds of a process so far, from /proc (Linux); undefined elsewhere or once it is gone. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // The fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}
