/**
 * `npm run bench`: load against the real server, on SQLite and on PostgreSQL, each time next to a
 * bare Koa baseline doing the same work in raw SQL on the same database, so that every figure is
 * reported as a share of what the database itself allows (the verify part has no baseline: its
 * figures stand against the issue's latency targets).
 *
 * Per database, one step after the other (never two servers under load at once):
 *   The hold part (BENCH_PARTS has `hold`), with autocannon:
 *   1. a fresh database; the real server with MODULES=user,event creates, through the admin API,
 *      a venue, a 5,000-seat event (50 rows × 100, CAT1–CAT3) and the hold pool: BENCH_HOLD_SEATS
 *      seats in events of at most 50,000; seat ids come from GET /api/events/{id}. It then stops.
 *   2. the real event slice (`node --import tsx src/main.ts`, MODULES=event, LOG_LEVEL=warn):
 *      the hold path, POST /internal/event/holdSeats of one seat (50 connections), then
 *      GET /api/events/{id} of the 5,000-seat event (10 connections).
 *   3. the same slice with LOG_LEVEL=info (one JSON log line per request): the hold path again.
 *   4. the baseline (bench/baseline.ts), alone: the hold path again.
 *   Each hold run follows a warm-up; between them the seats go back to AVAILABLE and the seats
 *   table is rebuilt compact (VACUUM; VACUUM FULL on PostgreSQL), so every run starts from the
 *   state of a freshly created event.
 *   The purchase part (BENCH_PARTS has `purchase`), in bench/lib/purchase.ts:
 *   5. the whole app (NODE_ENV=test, for its cheap password hashes) creates, for each shape of
 *      BENCH_SHAPES (data of its own, made alike), the reserve pool (BENCH_RESERVE_SEATS seats),
 *      a 10,000-seat event per flash sale, the users of the reserve run (one per 10 seats: a user
 *      holds at most 10) and 100 buyers per sale with credits, all through the API, and logs
 *      every user in.
 *   6. the whole app in one process (MODULES=all, LOG_LEVEL=warn; shape `single`): POST
 *      /api/reserve of one seat at 50 connections with autocannon (a warm-up, then the run); then
 *      the flash sales (bench/lib/flash.ts): 100 buyers on 50 keep-alive connections reserve
 *      (1 seat an order, then 1–4) and pay until the event is sold out; oversells are counted
 *      from the databases.
 *   7. every held seat back to AVAILABLE and the seats table rebuilt compact; then the split shape
 *      (`split`, bench/lib/split.ts): the four slices as four processes, as the Procfile runs them
 *      (MODULES=user, order, event, orchestrator, LOG_LEVEL=warn, each on its port with every
 *      slice's URL, the same secrets and the same DATABASE_URL, so each its own schema; on SQLite
 *      each its own file), and in front of them Debian's nginx with deploy/nginx.conf (its ports
 *      rewritten, as test/nginx.test.ts does; the slices with TRUST_PROXY=true), its one base URL
 *      for the clients; without nginx, each request goes straight to the slice that owns it by
 *      that file's routes (the table says which). The same reserve run and the same flash sales
 *      as in 6, each against the single process's: seats/s (target ≥ 50 %) and p99 (target ≤ 2×),
 *      reported, never asserted. Each run of 6–8 also reports the CPU, in % of a core, of each
 *      server process, of the bench database's PostgreSQL backends and of the load generator.
 *   8. the raw-SQL baseline (bench/sale-baseline.ts), alone, on tables of its own that it creates
 *      afresh for each run: the same reserve run and the same flash sales.
 *   The verify part (BENCH_PARTS has `verify`), in bench/lib/verify.ts; figures are reported
 *   against the targets (p99 < 20 ms alone, < 50 ms during the sale), never asserted:
 *   9. the whole app (NODE_ENV=test, MAX_SEATS_PER_ORDER=100) creates, through the API, the ticket
 *      pool (an event of BENCH_VERIFY_TICKETS seats, bought in orders of 100 by owners of 1,000
 *      tickets each, and each ticket's QR payload fetched by its owner from
 *      GET /api/tickets/{id}/qr), a staff user (PATCH /api/admin/users/{id} {role: staff}), and
 *      three 10,000-seat sale events with 100 buyers each.
 *  10. the whole app in one process (MODULES=all, LOG_LEVEL=warn, QR_TTL_SECONDS=3600, so the
 *      payloads stay valid): POST /api/verify {qr_payload, hall_id} with the staff token at 20
 *      connections (autocannon), each request the next ticket of the pool in a random order, so
 *      every scan is a first scan (SUCCESS) until the pool runs out (then DUPLICATE): a warm-up,
 *      then "verify alone"; then a warm-up sale, the one-seat flash sale (bench/lib/flash.ts)
 *      alone for BENCH_DURATION, and the same sale on a fresh event with the same verify load
 *      alongside for BENCH_DURATION ("verify during the flash sale"; the sale is ended with it).
 *      Each 200's verdict is counted, the pool's CHECKED_IN seats are checked against the
 *      SUCCESSes, and the pool goes back from CHECKED_IN to SOLD before each verify run. The
 *      verify part's warm-ups last BENCH_WARMUP seconds and at least 5,000 answers (at most
 *      5 × BENCH_WARMUP seconds).
 * A table per part is printed and everything is written to bench/results/.
 *
 * Knobs: BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 2, 0 = none),
 * BENCH_DB=sqlite|postgres|both (default both: PostgreSQL when one is reachable),
 * BENCH_DATABASE_URL / DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test when
 * `pg_isready -h 127.0.0.1` succeeds), BENCH_PARTS: a comma-separated list of hold, purchase,
 * verify (default all three), BENCH_SHAPES: a comma-separated list of single, split (the purchase
 * part's shapes of the real server; default both), BENCH_NGINX (the nginx of the split shape:
 * default /usr/sbin/nginx or /usr/bin/nginx where installed; a path; `none`: each request straight
 * to its slice), BENCH_HOLD_SEATS (default 20000 × BENCH_DURATION),
 * BENCH_RESERVE_SEATS (default 2000 × (BENCH_DURATION + BENCH_WARMUP)), BENCH_SALE_SEATS (default
 * 10000; also the verify part's sale events), BENCH_SALE_MULTI=0 (no 1–4 seat sale),
 * BENCH_VERIFY_TICKETS (default 3000 × BENCH_DURATION: the verify pool, one run's worth of first
 * scans here), BENCH_CPU_PROF=1 (the LOG_LEVEL=warn event slice, the whole app and the split
 * shape's slices run with --cpu-prof into .tmp/bench-profiles/, the slices into
 * <db>-split-<module>/; their figures are then not comparable).
 *
 * The steps live in bench/lib/: settings (these knobs), databases, processes, setup, load,
 * purchase, split, flash, verify, report.
 */
import os from 'node:os';
import { type BenchDb, postgresDb, postgresServer, sqliteDb } from './lib/databases.js';
import { holdRun, type Row, seatMapRun } from './lib/load.js';
import { live, startBaseline, startEventServer, stopChild } from './lib/processes.js';
import { purchaseRuns } from './lib/purchase.js';
import { type DbResult, report, save } from './lib/report.js';
import { CPU_PROF, type Kind, log, PARTS, PROFILE_DIR, WHICH } from './lib/settings.js';
import { setup } from './lib/setup.js';
import { verifyRuns } from './lib/verify.js';

/** The hold path of the event slice (steps 1–4 above). */
async function holdRuns(db: BenchDb): Promise<Pick<DbResult, 'setup' | 'rows'>> {
  const s = await setup(db);
  const rows: Row[] = [];

  let server = await startEventServer(db, 'warn', CPU_PROF);
  try {
    rows.push(await holdRun(db, server.base, s.holdSeatIds, 'holdSeats, real server', 'server', 'warn'));
    rows.push(await seatMapRun(server.base, s.mapEventId, db));
  } finally {
    await stopChild(server);
  }

  server = await startEventServer(db, 'info', false);
  try {
    rows.push(await holdRun(db, server.base, s.holdSeatIds, 'holdSeats, real server', 'server', 'info'));
  } finally {
    await stopChild(server);
  }

  const baseline = await startBaseline(db);
  try {
    rows.push(await holdRun(db, baseline.base, s.holdSeatIds, 'holdSeats, bare Koa baseline', 'baseline', null));
  } finally {
    await stopChild(baseline);
  }

  const base = rows.find((r) => r.target === 'baseline');
  for (const r of rows) {
    if (r.heldAfter !== undefined && base && base.reqPerSec > 0) r.ratioToBaseline = r.reqPerSec / base.reqPerSec;
  }
  const { holdSeatIds, ...rest } = s;
  return { setup: { ...rest, holdSeats: holdSeatIds.length }, rows };
}

async function benchDb(db: BenchDb): Promise<DbResult> {
  const holds = PARTS.includes('hold') ? await holdRuns(db) : { rows: [] };
  const purchase = PARTS.includes('purchase') ? await purchaseRuns(db, PARTS.includes('hold')) : undefined;
  const afterOthers = PARTS.includes('hold') || PARTS.includes('purchase');
  const verify = PARTS.includes('verify') ? await verifyRuns(db, afterOthers) : undefined;
  return { kind: db.kind, database: await db.version(), ...holds, purchase, verify };
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
