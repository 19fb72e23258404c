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
 *
 * The steps live in bench/lib/: settings (these knobs), databases, processes, setup, load, report.
 */
import os from 'node:os';
import { type BenchDb, postgresDb, postgresServer, sqliteDb } from './lib/databases.js';
import { holdRun, type Row, seatMapRun } from './lib/load.js';
import { live, startBaseline, startEventServer, stopChild } from './lib/processes.js';
import { type DbResult, report, save } from './lib/report.js';
import { CPU_PROF, type Kind, log, PROFILE_DIR, WHICH } from './lib/settings.js';
import { setup } from './lib/setup.js';

async function benchDb(db: BenchDb): Promise<DbResult> {
  const s = await setup(db);
  const database = await db.version();
  const rows: Row[] = [];

  let server = await startEventServer(db, 'warn', CPU_PROF);
  try {
    rows.push(await holdRun(db, server.base, s.holdSeatIds, 'holdSeat, real server', 'server', 'warn'));
    rows.push(await seatMapRun(server.base, s.mapEventId, db));
  } finally {
    await stopChild(server);
  }

  server = await startEventServer(db, 'info', false);
  try {
    rows.push(await holdRun(db, server.base, s.holdSeatIds, 'holdSeat, real server', 'server', 'info'));
  } finally {
    await stopChild(server);
  }

  const baseline = await startBaseline(db);
  try {
    rows.push(await holdRun(db, baseline.base, s.holdSeatIds, 'holdSeat, bare Koa baseline', 'baseline', null));
  } finally {
    await stopChild(baseline);
  }

  const base = rows.find((r) => r.target === 'baseline');
  for (const r of rows) {
    if (r.heldAfter !== undefined && base && base.reqPerSec > 0) r.ratioToBaseline = r.reqPerSec / base.reqPerSec;
  }
  const { holdSeatIds, ...rest } = s;
  return { kind: db.kind, database, setup: { ...rest, holdSeats: holdSeatIds.length }, rows };
}

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

/** The databases to measure, and the PostgreSQL server's URL when there is one. */
function databases(): { kinds: Kind[]; pgUrl: string } {
  const kinds: Kind[] = WHICH === 'postgres' ? [] : ['sqlite'];
  if (WHICH === 'sqlite') return { kinds, pgUrl: '' };
  const server = postgresServer();
  if ('url' in server) return { kinds: [...kinds, 'postgres'], pgUrl: server.url };
  if (WHICH === 'postgres') {
    console.error(`PostgreSQL benchmark impossible: ${server.reason}`);
    process.exit(1);
  }
  console.log(`PostgreSQL skipped: ${server.reason}.`);
  return { kinds, pgUrl: '' };
}

async function main() {
  const { kinds, pgUrl } = databases();
  const [load1] = os.loadavg();
  if (load1 > 1) {
    log(
      'bench',
      `WARNING: load average ${load1.toFixed(2)} before the start: other work on this machine skews the figures`,
    );
  }
  if (CPU_PROF) log('bench', `BENCH_CPU_PROF=1: profiles go to ${PROFILE_DIR}; profiled figures are not comparable`);

  let failed = false;
  for (const kind of kinds) {
    const started = performance.now();
    try {
      const db = kind === 'sqlite' ? sqliteDb() : await postgresDb(pgUrl);
      cleanups.add(db.drop);
      try {
        const result = await benchDb(db);
        report(result, save(result));
        log(kind, `done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      } finally {
        await Promise.allSettled([...live].map(stopChild));
        cleanups.delete(db.drop);
        await db.drop();
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
