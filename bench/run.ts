/**
 * `npm run bench`: autocannon against the real server, on SQLite and on PostgreSQL, with a bare
 * Koa baseline (bench/baseline.ts) doing the same raw SQL on the same database, so that the hold
 * path is reported as a ratio of what the database itself allows.
 *
 * Per database, one step after the other (never two servers under load at once):
 *   1. a fresh database; the real server with MODULES=user,event creates, through the admin API,
 *      a venue, a 5,000-seat event (50 rows × 100, CAT1–CAT3) and the hold pool: BENCH_HOLD_SEATS
 *      seats in events of at most 50,000; seat ids come from GET /api/events/{id}. It then stops.
 *   2. the real event slice (`node --import tsx src/main.ts`, MODULES=event, LOG_LEVEL=warn):
 *      the hold path, POST /internal/event/holdSeat (50 connections), then GET /api/events/{id}
 *      of the 5,000-seat event (10 connections).
 *   3. the same slice with LOG_LEVEL=info (one JSON log line per request): the hold path again.
 *   4. the baseline, alone: the hold path again.
 * Each hold run follows a warm-up; between them the seats go back to AVAILABLE and the seats table
 * is rebuilt compact (VACUUM; VACUUM FULL on PostgreSQL), so every run starts from the state of a
 * freshly created event. A table is printed and everything is written to bench/results/.
 *
 * Knobs: BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 2, 0 = none),
 * BENCH_DB=sqlite|postgres|both (default both: PostgreSQL when one is reachable),
 * BENCH_DATABASE_URL / DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test when
 * `pg_isready -h 127.0.0.1` succeeds), BENCH_HOLD_SEATS (default 20000 × BENCH_DURATION),
 * BENCH_CPU_PROF=1 (the LOG_LEVEL=warn server runs with --cpu-prof into .tmp/bench-profiles/;
 * its figures are then not comparable).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import pg from 'pg';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS_DIR = join(ROOT, 'bench', 'results');
const PROFILE_DIR = join(ROOT, '.tmp', 'bench-profiles');

function intEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`${name} must be an integer ≥ ${min} (got "${raw}")`);
    process.exit(2);
  }
  return n;
}

const DURATION = intEnv('BENCH_DURATION', 10, 1);
const WARMUP = intEnv('BENCH_WARMUP', 2, 0);
/** Enough free seats that no run (≈15,000 holds/s at most here) runs out: a drawn seat is never drawn again. */
const HOLD_SEATS = intEnv('BENCH_HOLD_SEATS', 20_000 * DURATION, 1000);
const CPU_PROF = process.env.BENCH_CPU_PROF === '1';
const WHICH = (process.env.BENCH_DB || 'both').toLowerCase();
if (!['sqlite', 'postgres', 'both'].includes(WHICH)) {
  console.error(`BENCH_DB must be sqlite, postgres or both (got "${process.env.BENCH_DB}")`);
  process.exit(2);
}

const MAX_EVENT_SEATS = 50_000;
const GET_CONNECTIONS = 10;
const HOLD_CONNECTIONS = 50;
const HOLD_TTL_SECONDS = 300;
const SERVICE_TOKEN = 'bench-service-token-0123456789abcdef';
const JWT_SECRET = 'bench-jwt-secret-0123456789abcdefghijkl';
const ADMIN = { email: 'bench-admin@bench.local', password: 'bench-admin-pass-1' };

type Kind = 'sqlite' | 'postgres';
const log = (kind: Kind | 'bench', msg: string) => console.error(`[${kind}] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------------
// Child processes

interface Child {
  name: string;
  proc: ChildProcess;
  logFile: string;
  exited: Promise<void>;
  exitCode: number | null | undefined;
}

const live = new Set<Child>();

/** Every variable the server's configuration reads, so that none leaks in from the caller's shell. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  const map = JSON.parse(readFileSync(join(ROOT, 'config', 'custom-environment-variables.json'), 'utf8'));
  const walk = (node: unknown) => {
    if (typeof node === 'string') delete env[node];
    else if (node && typeof node === 'object') for (const v of Object.values(node)) walk(v);
  };
  walk(map);
  delete env.NODE_CONFIG_DIR;
  return env;
}

function startChild(name: string, args: string[], env: Record<string, string>, logDir: string): Child {
  const logFile = join(logDir, `${name}.log`);
  // Logs go to a file, as under a process manager: the bench process does not read them while it loads.
  const fd = openSync(logFile, 'a');
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { ...cleanEnv(), ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const child: Child = { name, proc, logFile, exitCode: undefined, exited: Promise.resolve() };
  child.exited = new Promise<void>((done) =>
    proc.once('exit', (code) => {
      child.exitCode = code;
      live.delete(child);
      done();
    }),
  );
  live.add(child);
  return child;
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** SIGTERM, then SIGKILL after 5 s. */
async function stopChild(child: Child): Promise<void> {
  if (child.exitCode !== undefined) return;
  child.proc.kill('SIGTERM');
  const killed = await Promise.race([child.exited.then(() => false), sleep(5000).then(() => true)]);
  if (killed) {
    child.proc.kill('SIGKILL');
    await child.exited;
  }
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => done(port));
    });
  });
}

/**
 * Ready once /health says the server's own database is connected. The event slice alone answers
 * 503 all the same, because the user module (the session owner) it would reach is not running;
 * nothing the benchmark calls needs it.
 */
async function waitHealthy(base: string, child: Child, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== undefined) {
      throw new Error(`${child.name} exited (${child.exitCode}) before it was healthy:\n${tail(child.logFile)}`);
    }
    const ok = await fetch(`${base}/health`, { signal: AbortSignal.timeout(1000) })
      .then(async (r) => {
        last = `${r.status} ${await r.text()}`;
        const body = JSON.parse(last.slice(4)) as { checks?: { database?: string } };
        return r.ok || body.checks?.database === 'connected';
      })
      .catch(() => false);
    if (ok) return;
    await sleep(100);
  }
  throw new Error(
    `${child.name} was not healthy after ${timeoutMs} ms (last /health: ${last || 'no answer'}):\n${tail(child.logFile)}`,
  );
}

// ------------------------------------------------------------------------------------------------
// Databases

interface BenchDb {
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
  drop(): Promise<void>;
}

const RESET_SET = `status = 'AVAILABLE', held_by_user_id = null, hold_order_id = null, held_until = null`;

function sqliteDb(): BenchDb {
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
    drop: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function postgresDb(serverUrl: string): Promise<BenchDb> {
  const name = `tr_bench_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  const dir = mkdtempSync(join(os.tmpdir(), 'tr-bench-'));
  const withClient = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    try {
      return await fn(c);
    } finally {
      await c.end();
    }
  };
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
    async drop() {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The PostgreSQL server to use, or why there is none. */
function postgresServer(): { url: string } | { reason: string } {
  const given = process.env.BENCH_DATABASE_URL || process.env.DATABASE_URL;
  if (given) return { url: given };
  const probe = spawnSync('pg_isready', ['-q', '-h', '127.0.0.1'], { stdio: 'ignore' });
  if (probe.error) return { reason: 'no DATABASE_URL or BENCH_DATABASE_URL, and pg_isready is not installed' };
  if (probe.status !== 0) {
    return { reason: 'no DATABASE_URL or BENCH_DATABASE_URL, and nothing accepts connections on 127.0.0.1:5432' };
  }
  return { url: 'postgres://postgres@127.0.0.1:5432/test' };
}

// ------------------------------------------------------------------------------------------------
// HTTP setup through the real API

async function api<T>(base: string, method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: { success?: boolean; data?: T } | undefined;
  try {
    parsed = JSON.parse(text);
  } catch {}
  if (!res.ok || parsed?.success !== true) {
    throw new Error(`${method} ${path} answered ${res.status}: ${text.slice(0, 500)}`);
  }
  return parsed.data as T;
}

interface Setup {
  mapEventId: string;
  mapSeats: number;
  mapBytes: number;
  holdEventIds: string[];
  holdSeatIds: string[];
  /** ms per created event, by seat count. */
  createMs: { seats: number; ms: number }[];
  seatMapFetchMs: number[];
}

function seatMap(total: number, perRow = 100) {
  const rowsCount = Math.ceil(total / perRow);
  return Array.from({ length: rowsCount }, (_, i) => ({
    row_number: `R${i + 1}`,
    seats: i === rowsCount - 1 ? total - perRow * (rowsCount - 1) : perRow,
    // The front fifth CAT1, the next third CAT2, the rest CAT3.
    category: i < rowsCount / 5 ? 'CAT1' : i < rowsCount * (1 / 5 + 1 / 3) ? 'CAT2' : 'CAT3',
  }));
}

async function setup(db: BenchDb): Promise<Setup> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = startChild(
    `${db.kind}-setup`,
    ['--import', 'tsx', 'src/main.ts'],
    {
      ...db.env,
      NODE_ENV: 'development',
      SEED_DEMO: 'false',
      MODULES: 'user,event',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      JWT_SECRET,
      SERVICE_TOKEN,
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
    },
    db.dir,
  );
  try {
    await waitHealthy(base, server);
    const { access_token: token } = await api<{ access_token: string }>(base, 'POST', '/api/auth/login', ADMIN);
    const venue = await api<{ venue_id: string }>(
      base,
      'POST',
      '/api/admin/venues',
      { name: 'Bench Arena', address: '1 Benchmark Way', total_halls: 1 },
      token,
    );
    const eventDate = new Date(Date.now() + 90 * 86_400_000).toISOString();
    const createMs: Setup['createMs'] = [];
    const create = async (name: string, seats: number) => {
      const started = performance.now();
      const e = await api<{ event_id: string; total_seats: number }>(
        base,
        'POST',
        '/api/admin/events',
        {
          name,
          venue_id: venue.venue_id,
          hall_id: 'HALL-1',
          event_date: eventDate,
          pricing_tiers: { CAT1: 188, CAT2: 128, CAT3: 68 },
          seat_map: { rows: seatMap(seats) },
        },
        token,
      );
      createMs.push({ seats, ms: Math.round(performance.now() - started) });
      if (e.total_seats !== seats) throw new Error(`${name}: ${e.total_seats} seats created, ${seats} asked`);
      return e.event_id;
    };
    const seatMapFetchMs: number[] = [];
    const seatsOf = async (eventId: string) => {
      const started = performance.now();
      const res = await fetch(`${base}/api/events/${eventId}`);
      const text = await res.text();
      seatMapFetchMs.push(Math.round(performance.now() - started));
      if (!res.ok) throw new Error(`GET /api/events/${eventId} answered ${res.status}: ${text.slice(0, 300)}`);
      const body = JSON.parse(text) as { data: { seats: { seat_id: string; status: string }[] } };
      return { ids: body.data.seats.map((s) => s.seat_id), bytes: Buffer.byteLength(text) };
    };

    log(db.kind, 'creating the 5,000-seat event and the hold pool through the admin API');
    const mapEventId = await create('Bench seat map (5,000 seats)', 5000);
    const holdEventIds: string[] = [];
    for (let left = HOLD_SEATS, n = 1; left > 0; left -= MAX_EVENT_SEATS, n++) {
      holdEventIds.push(await create(`Bench hold pool ${n}`, Math.min(left, MAX_EVENT_SEATS)));
    }
    const map = await seatsOf(mapEventId);
    const holdSeatIds: string[] = [];
    for (const id of holdEventIds) holdSeatIds.push(...(await seatsOf(id)).ids);
    if (map.ids.length !== 5000 || holdSeatIds.length !== HOLD_SEATS) {
      throw new Error(`seat maps have ${map.ids.length} and ${holdSeatIds.length} seats`);
    }
    return {
      mapEventId,
      mapSeats: map.ids.length,
      mapBytes: map.bytes,
      holdEventIds,
      holdSeatIds,
      createMs,
      seatMapFetchMs,
    };
  } finally {
    await stopChild(server);
  }
}

// ------------------------------------------------------------------------------------------------
// Load

interface Row {
  scenario: string;
  target: 'server' | 'baseline';
  logLevel: string | null;
  connections: number;
  durationS: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  mbPerSec: number;
  ok2xx: number;
  conflict409: number;
  /** Socket errors, timeouts, and every status that is neither 2xx nor (for holds) 409. */
  errors: number;
  statuses: Record<string, number>;
  /** Hold runs: seats HELD in the database after the run (≥ 2xx; in-flight ones at the stop may add up to `connections`). */
  heldAfter?: number;
  /** Hold runs: requests sent beyond the pool, which can only be 409s. */
  poolWrapped?: boolean;
  ratioToBaseline?: number;
  /** The 1-minute load average right after the run: well above 2 (the bench's own share) means other work ran too. */
  loadAvg1m?: number;
  raw: autocannon.Result & { perSecond?: number[] };
}

function summarize(
  scenario: string,
  target: Row['target'],
  logLevel: string | null,
  r: autocannon.Result,
  conflictsOk: boolean,
): Row {
  const statuses = Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count]));
  const conflict409 = conflictsOk ? (statuses['409'] ?? 0) : 0;
  const others = Object.entries(statuses)
    .filter(([code]) => !code.startsWith('2') && !(conflictsOk && code === '409'))
    .reduce((n, [, count]) => n + count, 0);
  return {
    scenario,
    target,
    logLevel,
    connections: r.connections,
    durationS: r.duration,
    reqPerSec: r.requests.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    mbPerSec: r.throughput.average / 1e6,
    ok2xx: r['2xx'],
    conflict409,
    errors: r.errors + r.mismatches + others,
    statuses,
    raw: r,
  };
}

/**
 * One autocannon run. It resolves when its time is up, without waiting for the requests still in
 * flight; the server finishes those a moment later, so give it that moment before anything reads
 * or resets the seats.
 */
async function run(options: autocannon.Options): Promise<autocannon.Result & { perSecond: number[] }> {
  // autocannon stops at the first one-second sample after its stop timer: when a busy event loop
  // runs the 10 s sample first, the run goes on to 11 s. Stopping a little early keeps it at 10 s.
  const duration = Math.max(0.5, (options.duration ?? DURATION) - 0.2);
  const instance = autocannon({ ...options, duration });
  const perSecond: number[] = [];
  instance.on('tick', ({ counter }) => perSecond.push(counter));
  const result = Object.assign(await instance, { perSecond });
  await sleep(500);
  return result;
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

async function seatMapRun(base: string, eventId: string, kind: Kind): Promise<Row> {
  const options = { url: `${base}/api/events/${eventId}`, connections: GET_CONNECTIONS };
  if (WARMUP) await run({ ...options, duration: WARMUP });
  log(kind, `GET /api/events/{id} (5,000 seats), ${GET_CONNECTIONS} connections, ${DURATION} s`);
  const r = await run({ ...options, duration: DURATION });
  return { ...summarize('GET /api/events/{id} (5,000 seats)', 'server', 'warn', r, false), loadAvg1m: os.loadavg()[0] };
}

/**
 * POST /internal/event/holdSeat at 50 connections: each request a seat of the pool, in a fresh
 * random order without repeats (so that holds land on free seats until the pool runs out), with a
 * fresh random user and order.
 */
async function holdRun(
  db: BenchDb,
  base: string,
  seatIds: readonly string[],
  scenario: string,
  target: Row['target'],
  logLevel: string | null,
): Promise<Row> {
  let sent = 0;
  const options = (duration: number): autocannon.Options => {
    const order = shuffled(seatIds);
    sent = 0;
    return {
      url: base,
      connections: HOLD_CONNECTIONS,
      duration,
      requests: [
        {
          method: 'POST',
          path: '/internal/event/holdSeat',
          headers: { 'content-type': 'application/json', 'x-service-token': SERVICE_TOKEN },
          setupRequest: (req) => {
            req.body = JSON.stringify({
              seatId: order[sent++ % order.length],
              userId: randomUUID(),
              orderId: randomUUID(),
              ttlSeconds: HOLD_TTL_SECONDS,
            });
            return req;
          },
        },
      ],
    };
  };
  if (WARMUP) {
    await db.reset();
    await run(options(WARMUP));
  }
  await db.reset(true);
  log(db.kind, `${scenario}, ${HOLD_CONNECTIONS} connections, ${DURATION} s`);
  const r = await run(options(DURATION));
  const row = summarize(scenario, target, logLevel, r, true);
  row.loadAvg1m = os.loadavg()[0];
  row.heldAfter = await db.held();
  row.poolWrapped = sent > seatIds.length;
  if (row.heldAfter < row.ok2xx || row.heldAfter > row.ok2xx + HOLD_CONNECTIONS) {
    log(db.kind, `WARNING: ${row.ok2xx} holds answered 2xx but ${row.heldAfter} seats are HELD in the database`);
  }
  return row;
}

async function startServer(db: BenchDb, logLevel: string, profile: boolean) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const args = ['--import', 'tsx'];
  if (profile) {
    mkdirSync(PROFILE_DIR, { recursive: true });
    // Node's default file names: tsx's loader thread writes a profile of its own beside the main thread's.
    args.push('--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`);
  }
  args.push('src/main.ts');
  const child = startChild(
    `${db.kind}-event-${logLevel}`,
    args,
    {
      ...db.env,
      NODE_ENV: 'development',
      SEED_DEMO: 'false',
      MODULES: 'event',
      EVENT_PORT: String(port),
      LOG_LEVEL: logLevel,
      JWT_SECRET,
      SERVICE_TOKEN,
    },
    db.dir,
  );
  await waitHealthy(base, child);
  return { base, child };
}

async function startBaseline(db: BenchDb) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = startChild(
    `${db.kind}-baseline`,
    ['--import', 'tsx', 'bench/baseline.ts'],
    { ...db.env, BASELINE_PORT: String(port), SERVICE_TOKEN, DATABASE_URL: db.env.DATABASE_URL ?? '' },
    db.dir,
  );
  await waitHealthy(base, child);
  return { base, child };
}

// ------------------------------------------------------------------------------------------------
// One database

interface DbResult {
  kind: Kind;
  database: string;
  setup: Omit<Setup, 'holdSeatIds'> & { holdSeats: number };
  rows: Row[];
}

async function benchDb(db: BenchDb): Promise<DbResult> {
  const s = await setup(db);
  const database = await db.version();
  const rows: Row[] = [];

  let server = await startServer(db, 'warn', CPU_PROF);
  try {
    rows.push(await holdRun(db, server.base, s.holdSeatIds, 'holdSeat, real server', 'server', 'warn'));
    rows.push(await seatMapRun(server.base, s.mapEventId, db.kind));
  } finally {
    await stopChild(server.child);
  }

  server = await startServer(db, 'info', false);
  try {
    rows.push(await holdRun(db, server.base, s.holdSeatIds, 'holdSeat, real server', 'server', 'info'));
  } finally {
    await stopChild(server.child);
  }

  const baseline = await startBaseline(db);
  try {
    rows.push(await holdRun(db, baseline.base, s.holdSeatIds, 'holdSeat, bare Koa baseline', 'baseline', null));
  } finally {
    await stopChild(baseline.child);
  }

  const base = rows.find((r) => r.target === 'baseline');
  for (const r of rows) {
    if (r.heldAfter !== undefined && base && base.reqPerSec > 0) r.ratioToBaseline = r.reqPerSec / base.reqPerSec;
  }
  const { holdSeatIds, ...rest } = s;
  return { kind: db.kind, database, setup: { ...rest, holdSeats: holdSeatIds.length }, rows };
}

// ------------------------------------------------------------------------------------------------
// Output

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function table(result: DbResult): string {
  const head = [
    'scenario',
    'log level',
    'conns',
    's',
    'req/s',
    'p50 ms',
    'p99 ms',
    'MB/s',
    '2xx',
    '409',
    'errors',
    'vs baseline',
  ];
  const body = result.rows.map((r) => [
    r.scenario,
    r.logLevel ?? '—',
    String(r.connections),
    fmt(r.durationS, 1),
    fmt(r.reqPerSec),
    String(r.p50Ms),
    String(r.p99Ms),
    fmt(r.mbPerSec, 1),
    fmt(r.ok2xx),
    r.heldAfter === undefined ? '—' : fmt(r.conflict409),
    fmt(r.errors),
    r.ratioToBaseline === undefined ? '—' : `${Math.round(r.ratioToBaseline * 100)} %`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i <= 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i <= 1 ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`;
  return [line(head), rule, ...body.map(line)].join('\n');
}

function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
  };
}

function report(result: DbResult, file: string) {
  const m = machine();
  const target = result.rows.find((r) => r.target === 'server' && r.logLevel === 'warn' && r.ratioToBaseline);
  const lines = [
    '',
    `${result.kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}: ${result.database}`,
    `${new Date().toISOString()} · ${m.cpus} cores (${m.cpuModel}) · Node ${m.node} · ${DURATION} s per run after ${WARMUP} s warm-up`,
    'real server: node --import tsx src/main.ts, MODULES=event, NODE_ENV=development; autocannon runs in this process, on the same cores',
    '',
    table(result),
    '',
  ];
  if (target?.ratioToBaseline !== undefined) {
    const pct = Math.round(target.ratioToBaseline * 100);
    lines.push(
      `hold path (LOG_LEVEL=warn) at ${pct} % of the bare Koa baseline: target ≥ 50 % ${pct >= 50 ? 'met' : 'NOT met'}`,
    );
  }
  const holds = result.rows.filter((r) => r.heldAfter !== undefined);
  for (const r of holds) {
    const series = (r.raw.perSecond ?? []).slice(0, Math.round(r.durationS));
    lines.push(`responses per second, ${r.target}${r.logLevel ? ` ${r.logLevel}` : ''}: ${series.join(' ')}`);
  }
  lines.push(
    `holds: ${result.setup.holdSeats.toLocaleString('en-US')}-seat pool; seats HELD after each run: ${holds
      .map((r) => `${fmt(r.heldAfter ?? 0)} (${r.target}${r.logLevel ? ` ${r.logLevel}` : ''})`)
      .join(', ')}${holds.some((r) => r.poolWrapped) ? '; the pool ran out in a run, later requests were 409s' : ''}`,
  );
  lines.push(
    `setup: events created in ${result.setup.createMs.map((c) => `${fmt(c.ms)} ms (${fmt(c.seats)} seats)`).join(', ')}; seat map of 5,000 seats is ${fmt(result.setup.mapBytes / 1024)} KiB`,
  );
  lines.push(`results: ${file}`);
  console.log(lines.join('\n'));
}

// ------------------------------------------------------------------------------------------------

const cleanups = new Set<() => Promise<void>>();

async function cleanupAll() {
  await Promise.allSettled([...live].map(stopChild));
  for (const c of [...cleanups]) await c().catch((err) => console.error(`cleanup failed: ${err}`));
  cleanups.clear();
}

process.once('SIGINT', () => {
  console.error('\ninterrupted: stopping the servers and dropping the databases');
  void cleanupAll().finally(() => process.exit(130));
});

async function main() {
  const kinds: Kind[] = [];
  let pgUrl = '';
  if (WHICH !== 'postgres') kinds.push('sqlite');
  if (WHICH !== 'sqlite') {
    const server = postgresServer();
    if ('url' in server) {
      pgUrl = server.url;
      kinds.push('postgres');
    } else if (WHICH === 'postgres') {
      console.error(`PostgreSQL benchmark impossible: ${server.reason}`);
      process.exit(1);
    } else {
      console.log(`PostgreSQL skipped: ${server.reason}.`);
    }
  }
  const [load1] = os.loadavg();
  if (load1 > 1) {
    log(
      'bench',
      `WARNING: load average ${load1.toFixed(2)} before the start: other work on this machine skews the figures`,
    );
  }
  if (CPU_PROF) log('bench', `BENCH_CPU_PROF=1: profiles go to ${PROFILE_DIR}; profiled figures are not comparable`);
  mkdirSync(RESULTS_DIR, { recursive: true });

  let failed = false;
  for (const kind of kinds) {
    const started = performance.now();
    let db: BenchDb | undefined;
    try {
      db = kind === 'sqlite' ? sqliteDb() : await postgresDb(pgUrl);
      const drop = db.drop;
      cleanups.add(drop);
      try {
        const result = await benchDb(db);
        const file = join(RESULTS_DIR, `${new Date().toISOString().replace(/[:.]/g, '-')}-${kind}.json`);
        writeFileSync(
          file,
          `${JSON.stringify(
            {
              date: new Date().toISOString(),
              machine: machine(),
              settings: {
                durationS: DURATION,
                warmupS: WARMUP,
                holdSeats: HOLD_SEATS,
                getConnections: GET_CONNECTIONS,
                holdConnections: HOLD_CONNECTIONS,
                holdTtlSeconds: HOLD_TTL_SECONDS,
                cpuProfile: CPU_PROF,
                server: 'node --import tsx src/main.ts, NODE_ENV=development, SEED_DEMO=false, MODULES=event',
              },
              ...result,
            },
            null,
            2,
          )}\n`,
        );
        // biome.json covers bench/**: formatted its way, a result left here keeps `npm run lint` clean.
        spawnSync(join(ROOT, 'node_modules', '.bin', 'biome'), ['format', '--write', file], { stdio: 'ignore' });
        report(result, file.slice(ROOT.length + 1));
        log(kind, `done in ${fmt((performance.now() - started) / 1000, 1)} s`);
      } finally {
        await Promise.allSettled([...live].map(stopChild));
        cleanups.delete(drop);
        await drop();
      }
    } catch (err) {
      failed = true;
      console.error(`[${kind}] benchmark failed: ${err instanceof Error ? err.message : err}`);
    }
  }
  process.exitCode = failed ? 1 : 0;
}

await main().catch(async (err) => {
  console.error(err);
  await cleanupAll();
  process.exit(1);
});
