import os from 'node:os';
import autocannon from 'autocannon';
import type { BenchDb } from './databases.js';
import { type Buyer, flashSale, latency } from './flash.js';
import { shuffled } from './load.js';
import { type Child, cpuSeconds, startAppServer, startPurchaseSetupServer, stopChild } from './processes.js';
import {
  inParallel,
  type PurchaseRow,
  registerUsers,
  type Sale,
  saleRun,
  serverSaleTables,
  serverSide,
} from './purchase.js';
import {
  ADMIN,
  CPU_PROF,
  DURATION,
  log,
  MAX_EVENT_SEATS,
  SALE_BALANCE,
  SALE_BUYERS,
  SALE_CONNECTIONS,
  SALE_SEATS,
  sleep,
  VERIFY_CONNECTIONS,
  VERIFY_QR_TTL_SECONDS,
  VERIFY_SEATS_PER_ORDER,
  VERIFY_TARGET_P99_MS,
  VERIFY_TICKETS,
  VERIFY_TICKETS_PER_OWNER,
  VERIFY_WARMUP_ANSWERS,
  WARMUP,
} from './settings.js';
import { api, benchVenue } from './setup.js';

/**
 * The verify part: POST /api/verify of the whole app in one process, at VERIFY_CONNECTIONS
 * connections, alone and while a flash sale runs against the same process.
 */

/** One ticket of the pool: a SOLD seat and the QR payload its owner got from GET /api/tickets/{id}/qr. */
interface Ticket {
  seatId: string;
  qr: string;
}

export interface VerifySetup {
  staffToken: string;
  hallId: string;
  poolEventIds: string[];
  tickets: Ticket[];
  /** Three SALE_SEATS-seat events and their buyers: the sale's warm-up, the sale alone, the sale during verify. */
  sales: { eventId: string; seatIds: string[]; buyers: Buyer[] }[];
  owners: number;
  usersMs: number;
  buyMs: number;
  qrMs: number;
}

/** One verify run: POST /api/verify at VERIFY_CONNECTIONS connections (autocannon). */
export interface VerifyRow {
  scenario: string;
  connections: number;
  durationS: number;
  requests: number;
  reqPerSec: number;
  /** Of every answer, from the write of the request to the end of the answer (autocannon's clock, fractional ms). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The target for p99: reported, never asserted. */
  targetP99Ms: number;
  ok200: number;
  /** Answers other than 200: every verdict is a 200, so each of these is a fault (400 QR_INVALID, 401, 5xx…). */
  non200: number;
  /** Requests without an answer: socket errors and timeouts. */
  errors: number;
  statuses: Record<string, number>;
  /** The `result` of each 200 answer (SUCCESS, DUPLICATE, …). */
  verdicts: Record<string, number>;
  /** Seats of the pool CHECKED_IN in the database after the run: the SUCCESS count, give or take those in flight. */
  checkedInAfter: number;
  /** More scans than tickets: the scans past the pool were second scans (DUPLICATE). */
  poolWrapped: boolean;
  loadAvg1m: number;
  /** CPU time over wall time during the run, in % of one core: the server (from /proc) and this process (the load). */
  serverCpuPct?: number;
  loadGeneratorCpuPct: number;
  perSecond: number[];
}

export interface VerifyResult {
  setup: { tickets: number; owners: number; usersMs: number; buyMs: number; qrMs: number };
  rows: VerifyRow[];
  /** The flash sale alone for as long as a verify run, then the same sale with verify alongside. */
  sales: PurchaseRow[];
}

const VERIFY_ALONE = 'verify alone';
const VERIFY_DURING_SALE = 'verify during the flash sale';
const SALE_ALONE: Sale = { scenario: 'flash sale, 1 seat an order, alone', seatsPerOrder: [1, 1] };
const SALE_WITH_VERIFY: Sale = {
  scenario: `flash sale, 1 seat an order, with verify c${VERIFY_CONNECTIONS}`,
  seatsPerOrder: [1, 1],
};

/**
 * Through the API of the whole app (NODE_ENV=test, MAX_SEATS_PER_ORDER and the hold limit at
 * VERIFY_SEATS_PER_ORDER so that the pool is bought in few orders): the pool of VERIFY_TICKETS
 * seats, bought by owners of VERIFY_TICKETS_PER_OWNER tickets each, every ticket's QR payload
 * fetched by its owner, a staff user (role `staff`, through PATCH /api/admin/users/{id}), and three
 * SALE_SEATS-seat sale events with SALE_BUYERS buyers each.
 */
export async function verifySetup(db: BenchDb): Promise<VerifySetup> {
  const perOrder = String(VERIFY_SEATS_PER_ORDER);
  const server = await startPurchaseSetupServer(db, ADMIN, {
    name: 'verify-setup',
    env: { MAX_SEATS_PER_ORDER: perOrder, MAX_HELD_SEATS_PER_USER: perOrder },
  });
  const { base } = server;
  try {
    const { access_token: admin } = await api<{ access_token: string }>(base, 'POST', '/api/auth/login', ADMIN);
    const addEvent = await benchVenue(base, admin, 'Bench Door Hall');
    const create = async (name: string, seats: number) => {
      const eventId = await addEvent(name, seats);
      const full = await api<{ hall_id: string; seats: { seat_id: string }[] }>(base, 'GET', `/api/events/${eventId}`);
      if (full.seats.length !== seats) throw new Error(`${name}: ${full.seats.length} seats, ${seats} asked`);
      return { eventId, hallId: full.hall_id, seatIds: full.seats.map((s) => s.seat_id) };
    };

    log(db.kind, `verify setup: a pool of ${VERIFY_TICKETS} tickets and three ${SALE_SEATS}-seat sale events`);
    const pool = [];
    for (let left = VERIFY_TICKETS, n = 1; left > 0; left -= MAX_EVENT_SEATS, n++) {
      pool.push(await create(`Bench verify pool ${n}`, Math.min(left, MAX_EVENT_SEATS)));
    }
    const saleEvents = [];
    for (const name of ['Bench sale warm-up', 'Bench sale alone', 'Bench sale with verify']) {
      saleEvents.push(await create(name, SALE_SEATS));
    }
    const hallId = pool[0].hallId;

    // Orders of VERIFY_SEATS_PER_ORDER seats of one event, VERIFY_TICKETS_PER_OWNER tickets an owner.
    const orders = pool.flatMap((e) =>
      Array.from({ length: Math.ceil(e.seatIds.length / VERIFY_SEATS_PER_ORDER) }, (_, i) =>
        e.seatIds.slice(i * VERIFY_SEATS_PER_ORDER, (i + 1) * VERIFY_SEATS_PER_ORDER),
      ),
    );
    const ordersPerOwner = Math.max(1, Math.floor(VERIFY_TICKETS_PER_OWNER / VERIFY_SEATS_PER_ORDER));
    const owners = Math.ceil(orders.length / ordersPerOwner);

    let started = performance.now();
    const users = await registerUsers(base, owners + 1 + saleEvents.length * SALE_BUYERS);
    const usersMs = Math.round(performance.now() - started);
    const [staff, ...rest] = users;
    const ownerList = rest.slice(0, owners);
    const buyers = rest.slice(owners);
    await api(base, 'PATCH', `/api/admin/users/${staff.userId}`, { role: 'staff' }, admin);
    await inParallel([...ownerList, ...buyers], 8, (b) =>
      api(base, 'POST', '/api/admin/credits', { user_id: b.userId, amount: SALE_BALANCE, reason: 'bench' }, admin),
    );

    log(db.kind, `verify setup: ${owners} owners buy ${VERIFY_TICKETS} tickets in ${orders.length} orders`);
    started = performance.now();
    const ownerOf = (i: number) => ownerList[Math.floor(i / ordersPerOwner)];
    await inParallel(ownerList, 8, async (owner, o) => {
      for (let i = o * ordersPerOwner; i < Math.min(orders.length, (o + 1) * ordersPerOwner); i++) {
        const held = await api<{ order_id: string }>(
          base,
          'POST',
          '/api/reserve',
          { seat_ids: orders[i] },
          owner.token,
        );
        await api(base, 'POST', '/api/pay', { order_id: held.order_id }, owner.token);
      }
    });
    const buyMs = Math.round(performance.now() - started);

    log(db.kind, `verify setup: each owner fetches the QR payload of each of its tickets`);
    started = performance.now();
    const owned = orders.flatMap((seats, i) => seats.map((seatId) => ({ seatId, owner: ownerOf(i) })));
    const tickets = await inParallel(owned, 16, async ({ seatId, owner }): Promise<Ticket> => {
      const qr = await api<{ qr_payload: string }>(base, 'GET', `/api/tickets/${seatId}/qr`, undefined, owner.token);
      return { seatId, qr: qr.qr_payload };
    });
    const qrMs = Math.round(performance.now() - started);

    return {
      staffToken: staff.token as string,
      hallId,
      poolEventIds: pool.map((e) => e.eventId),
      tickets,
      sales: saleEvents.map((e, i) => ({
        eventId: e.eventId,
        seatIds: e.seatIds,
        buyers: buyers.slice(i * SALE_BUYERS, (i + 1) * SALE_BUYERS),
      })),
      owners,
      usersMs,
      buyMs,
      qrMs,
    };
  } finally {
    await stopChild(server);
  }
}

const inList = (ids: readonly string[]) => ids.map(() => '?').join(', ');

/** Seats of the pool CHECKED_IN now. */
async function checkedIn(db: BenchDb, s: VerifySetup): Promise<number> {
  const [row] = await db.select<{ n: number }>(
    'event',
    `select count(*) as n from {seats} where status = 'CHECKED_IN' and event_id in (${inList(s.poolEventIds)})`,
    s.poolEventIds,
  );
  return Number(row?.n ?? 0);
}

/**
 * The pool back to unscanned: its CHECKED_IN seats SOLD again (as the tickets were bought, owner
 * and order untouched), then the seats table rebuilt compact and checkpointed, as before each hold
 * run. The scan log keeps its rows.
 */
async function unscan(db: BenchDb, s: VerifySetup): Promise<number> {
  const n = await db.exec(
    'event',
    `update {seats} set status = 'SOLD', checked_in_at = null
      where status = 'CHECKED_IN' and event_id in (${inList(s.poolEventIds)})`,
    s.poolEventIds,
  );
  await db.reset(true);
  return n;
}

/**
 * Ends a verify run early when `until` settles; `done` is called as soon as the load stops,
 * `onAnswer` on every answer.
 */
interface Alongside {
  until?: Promise<unknown>;
  done?: () => void;
  onAnswer?: () => void;
}

/**
 * A warm-up's end: `signal` aborts (and `ended` settles) once WARMUP seconds have passed and
 * VERIFY_WARMUP_ANSWERS answers have come (`answer` counts one), or after 5 × WARMUP seconds.
 */
function warmUp() {
  const stop = new AbortController();
  const started = performance.now();
  let answers = 0;
  const timer = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    if ((s >= WARMUP && answers >= VERIFY_WARMUP_ANSWERS) || s >= 5 * WARMUP) {
      clearInterval(timer);
      stop.abort();
    }
  }, 50);
  const ended = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve()));
  return {
    signal: stop.signal,
    ended,
    answer: () => {
      answers++;
    },
    answers: () => answers,
  };
}

/**
 * POST /api/verify with the staff token at VERIFY_CONNECTIONS connections for `duration` seconds
 * (or until `along.until` settles): every request the next ticket of the pool in a fresh random
 * order (a first scan, a SUCCESS, until the pool wraps). Counts the verdict of every 200.
 */
async function verifyLoad(base: string, s: VerifySetup, duration: number, along?: Alongside, pid?: number) {
  const order = shuffled(s.tickets);
  const verdicts: Record<string, number> = {};
  const times: number[] = [];
  const perSecond: number[] = [];
  let sent = 0;
  const instance = autocannon({
    url: base,
    connections: VERIFY_CONNECTIONS,
    // As load.ts's run(): autocannon stops at the first one-second sample after its timer.
    duration: Math.max(0.5, duration - 0.2),
    requests: [
      {
        method: 'POST',
        path: '/api/verify',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${s.staffToken}` },
        setupRequest: (req) => ({
          ...req,
          body: JSON.stringify({ qr_payload: order[sent++ % order.length].qr, hall_id: s.hallId }),
        }),
        onResponse: (status, body) => {
          const key = status === 200 ? (/"result":"([A-Z_]+)"/.exec(body)?.[1] ?? 'no result') : `HTTP ${status}`;
          verdicts[key] = (verdicts[key] ?? 0) + 1;
        },
      },
    ],
  });
  instance.on('tick', ({ counter }) => perSecond.push(counter));
  instance.on('response', (_client, _status, _bytes, ms) => {
    times.push(ms);
    along?.onAnswer?.();
  });
  const stop = () => instance.stop();
  along?.until?.then(stop, stop);
  const [server0, own0, wall0] = [cpuSeconds(pid), process.cpuUsage(), performance.now()];
  const r = await instance;
  along?.done?.();
  const [server1, own, wallS] = [cpuSeconds(pid), process.cpuUsage(own0), (performance.now() - wall0) / 1000];
  const cpu = {
    serverPct:
      server0 === undefined || server1 === undefined ? undefined : Math.round((100 * (server1 - server0)) / wallS),
    ownPct: Math.round((own.user + own.system) / 1e4 / wallS),
  };
  // Let the requests still in flight finish before anything reads or resets the seats.
  await sleep(500);
  return { r, sent, times, verdicts, perSecond, cpu };
}

async function verifyRun(
  db: BenchDb,
  server: Child,
  s: VerifySetup,
  scenario: string,
  targetP99Ms: number,
  along?: Alongside,
): Promise<VerifyRow> {
  const load = await verifyLoad(server.base, s, DURATION, along, server.server.child.pid);
  const { r, sent, times, verdicts, perSecond } = load;
  const statuses = Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, c]) => [code, c.count]));
  const ok200 = statuses['200'] ?? 0;
  const lat = latency(times);
  return {
    scenario,
    connections: VERIFY_CONNECTIONS,
    durationS: r.duration,
    requests: times.length,
    reqPerSec: times.length / r.duration,
    p50Ms: lat.p50Ms,
    p99Ms: lat.p99Ms,
    maxMs: lat.maxMs,
    targetP99Ms,
    ok200,
    non200: times.length - ok200,
    errors: r.errors + r.timeouts,
    statuses,
    verdicts,
    checkedInAfter: await checkedIn(db, s),
    poolWrapped: sent > s.tickets.length,
    loadAvg1m: os.loadavg()[0],
    serverCpuPct: load.cpu.serverPct,
    loadGeneratorCpuPct: load.cpu.ownPct,
    perSecond: perSecond.slice(0, Math.round(r.duration)),
  };
}

/**
 * The verify part on one database: the setup, then the whole app in one process (MODULES=all,
 * LOG_LEVEL=warn, QR_TTL_SECONDS=3600): a warm-up of verify, verify alone for BENCH_DURATION; a
 * warm-up sale on an event of its own, the one-seat flash sale alone for BENCH_DURATION, then the
 * same sale on a fresh event with verify at VERIFY_CONNECTIONS alongside for as long (the sale is
 * ended when the verify run ends; the verify run ends early if the event sells out first). The
 * pool is unscanned before each verify run.
 */
export async function verifyRuns(db: BenchDb, afterOthers: boolean): Promise<VerifyResult> {
  if (afterOthers) await db.reset(true);
  const s = await verifySetup(db);
  const side = serverSide(db);
  const rows: VerifyRow[] = [];
  const sales: PurchaseRow[] = [];
  const server: Child = await startAppServer(db, CPU_PROF, {
    name: 'app-verify',
    env: { QR_TTL_SECONDS: String(VERIFY_QR_TTL_SECONDS) },
  });
  const { base } = server;
  try {
    if (WARMUP) {
      const w = warmUp();
      const { r } = await verifyLoad(base, s, 5 * WARMUP, { until: w.ended, onAnswer: w.answer });
      log(db.kind, `verify warm-up: ${w.answers()} answers in ${r.duration} s`);
      await unscan(db, s);
    }
    log(db.kind, `${VERIFY_ALONE}, ${VERIFY_CONNECTIONS} connections, ${DURATION} s`);
    rows.push(await verifyRun(db, server, s, VERIFY_ALONE, VERIFY_TARGET_P99_MS.alone));
    await unscan(db, s);

    const [warm, alone, withVerify] = s.sales;
    if (WARMUP) {
      const w = warmUp();
      const r = await flashSale(side.sale(base), {
        seatIds: warm.seatIds,
        buyers: warm.buyers,
        connections: SALE_CONNECTIONS,
        seatsPerOrder: SALE_ALONE.seatsPerOrder,
        signal: w.signal,
        onAnswer: w.answer,
      });
      log(db.kind, `sale warm-up: ${r.requests} answers in ${r.elapsedS.toFixed(1)} s, ${r.seatsSold} seats sold`);
      await sleep(500);
    }
    sales.push(
      await saleRun(
        db,
        side,
        base,
        SALE_ALONE,
        alone.seatIds,
        alone.buyers,
        serverSaleTables(alone.eventId),
        AbortSignal.timeout(DURATION * 1000),
      ),
    );

    log(db.kind, `${VERIFY_DURING_SALE}: ${VERIFY_CONNECTIONS} connections, ${DURATION} s`);
    const stop = new AbortController();
    const sale = saleRun(
      db,
      side,
      base,
      SALE_WITH_VERIFY,
      withVerify.seatIds,
      withVerify.buyers,
      serverSaleTables(withVerify.eventId),
      stop.signal,
    );
    const done = () => stop.abort();
    try {
      rows.push(await verifyRun(db, server, s, VERIFY_DURING_SALE, VERIFY_TARGET_P99_MS.sale, { until: sale, done }));
    } finally {
      stop.abort();
      sales.push(await sale);
    }
  } finally {
    await stopChild(server);
  }
  for (const row of rows) {
    const success = row.verdicts.SUCCESS ?? 0;
    if (row.checkedInAfter < success || row.checkedInAfter > success + VERIFY_CONNECTIONS) {
      log(db.kind, `WARNING: ${row.scenario}: ${success} SUCCESS answers but ${row.checkedInAfter} seats CHECKED_IN`);
    }
    if (row.non200 + row.errors > 0) {
      log(db.kind, `WARNING: ${row.scenario}: ${row.non200} answers not 200 and ${row.errors} without an answer`);
    }
  }
  return {
    setup: { tickets: s.tickets.length, owners: s.owners, usersMs: s.usersMs, buyMs: s.buyMs, qrMs: s.qrMs },
    rows,
    sales,
  };
}
