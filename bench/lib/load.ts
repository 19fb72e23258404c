import { randomUUID } from 'node:crypto';
import os from 'node:os';
import autocannon from 'autocannon';
import type { BenchDb } from './databases.js';
import {
  DURATION,
  GET_CONNECTIONS,
  HOLD_CONNECTIONS,
  HOLD_TTL_SECONDS,
  HOLDS_PER_USER,
  log,
  SERVICE_TOKEN,
  sleep,
  WARMUP,
} from './settings.js';

export interface Row {
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

export function summarize(
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
export async function run(options: autocannon.Options): Promise<autocannon.Result & { perSecond: number[] }> {
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

export function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export async function seatMapRun(base: string, eventId: string, db: BenchDb): Promise<Row> {
  const options = { url: `${base}/api/events/${eventId}`, connections: GET_CONNECTIONS };
  if (WARMUP) await run({ ...options, duration: WARMUP });
  log(db.kind, `GET /api/events/{id} (5,000 seats), ${GET_CONNECTIONS} connections, ${DURATION} s`);
  const r = await run({ ...options, duration: DURATION });
  return { ...summarize('GET /api/events/{id} (5,000 seats)', 'server', 'warn', r, false), loadAvg1m: os.loadavg()[0] };
}

/**
 * POST /internal/event/holdSeats of one seat at 50 connections: each request a seat of the pool,
 * in a fresh random order without repeats (so that holds land on free seats until the pool runs
 * out), with a fresh random user and order.
 */
export async function holdRun(
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
          path: '/internal/event/holdSeats',
          headers: { 'content-type': 'application/json', 'x-service-token': SERVICE_TOKEN },
          setupRequest: (req) => {
            req.body = JSON.stringify({
              seatIds: [order[sent++ % order.length]],
              userId: randomUUID(),
              orderId: randomUUID(),
              ttlSeconds: HOLD_TTL_SECONDS,
              holdLimit: HOLDS_PER_USER,
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
