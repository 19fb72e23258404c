import os from 'node:os';
import type autocannon from 'autocannon';
import type { BenchDb } from './databases.js';
import {
  type Buyer,
  checkSale,
  flashSale,
  type SaleCheck,
  type SaleResult,
  type SaleTables,
  type SaleTarget,
} from './flash.js';
import { run, shuffled, summarize } from './load.js';
import { type Child, startAppServer, startPurchaseSetupServer, startSaleBaseline, stopChild } from './processes.js';
import {
  ADMIN,
  BASELINE_RESERVE_SEATS,
  CPU_PROF,
  DURATION,
  HOLDS_PER_USER,
  log,
  MAX_EVENT_SEATS,
  RESERVE_CONNECTIONS,
  RESERVE_SEATS,
  SALE_BALANCE,
  SALE_BUYERS,
  SALE_CONNECTIONS,
  SALE_MULTI,
  SALE_SEATS,
  SHAPES,
  type Shape,
  WARMUP,
} from './settings.js';
import { api, benchVenue } from './setup.js';
import { cpuMeter, type Routing, startSplit } from './split.js';

/**
 * One row of the purchase table: POST /api/reserve at 50 connections, or a flash sale. `server`
 * is the whole app in one process, `split` the four slices in four processes.
 */
export interface PurchaseRow {
  scenario: string;
  target: 'server' | 'split' | 'baseline';
  /** Split rows: through nginx (deploy/nginx.conf), or each request straight to its slice. */
  routing?: Routing;
  connections: number;
  /** Flash sales: the buyers' loops sharing the connections. */
  buyers?: number;
  durationS: number;
  reqPerSec: number;
  /** Seats held per second (reserve) or sold per second (flash sale). */
  seatsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  ok2xx: number;
  c4xx: number;
  c5xx: number;
  /** Requests without an answer (socket errors, timeouts). */
  errors: number;
  /** Flash sales: from the database afterwards; must be 0. */
  oversells?: number;
  /** Reserve runs: seats HELD in the database afterwards (≥ the 2xx of warm-up and run). */
  heldAfter?: number;
  /** Reserve runs: requests past the seat pool, which can only be refused. */
  poolWrapped?: boolean;
  ratioToBaseline?: number;
  /**
   * Split rows: against the single process's row of the same scenario, the split's seats/s over
   * the single's (the target: ≥ 0.5) and its p99 over the single's (target: ≤ 2).
   */
  vsSingle?: { throughput: number; p99: number };
  /** CPU during the run, in % of one core: each server process, the bench database's backends, the load generator. */
  cpuPct?: Record<string, number>;
  loadAvg1m: number;
  sale?: SaleResult & { check: SaleCheck };
  raw?: autocannon.Result & { perSecond?: number[] };
}

export interface Sale {
  scenario: string;
  seatsPerOrder: [number, number];
}

/** The flash sales of a run: one seat an order, and (unless BENCH_SALE_MULTI=0) 1 to 4. */
const SALES: Sale[] = [
  { scenario: 'flash sale, 1 seat an order', seatsPerOrder: [1, 1] },
  ...(SALE_MULTI ? [{ scenario: 'flash sale, 1–4 seats an order', seatsPerOrder: [1, 4] as [number, number] }] : []),
];

/** What one shape of the real server runs on: the same set-up for each, made alike. */
export interface ShapeData {
  reserveEventIds: string[];
  reserveSeatIds: string[];
  reserveUsers: Buyer[];
  /** Per flash sale (as SALES): its event, seats and buyers. */
  sales: { eventId: string; seatIds: string[]; buyers: Buyer[] }[];
}

export interface PurchaseSetup {
  shapes: Partial<Record<Shape, ShapeData>>;
  /** How long the users took to register and log in, and how many. */
  usersMs: number;
  users: number;
}

/** `fn` over `items`, `width` at a time. */
export async function inParallel<T, R>(
  items: readonly T[],
  width: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i], i);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}

/**
 * `count` users registered and logged in through the API (8 at a time), on a server with
 * NODE_ENV=test (its cheap password hashes and lifted rate limits).
 */
export async function registerUsers(base: string, count: number): Promise<Buyer[]> {
  const tag = `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
  return inParallel(Array.from({ length: count }), 8, async (_, i): Promise<Buyer> => {
    const email = `bench-${tag}-${i}@bench.local`;
    const password = 'bench-buyer-pass-1';
    await api(base, 'POST', '/api/auth/register', { email, password, phone: '+6591234567' });
    const login = await api<{ access_token: string; user: { user_id: string } }>(base, 'POST', '/api/auth/login', {
      email,
      password,
    });
    return { userId: login.user.user_id, token: login.access_token };
  });
}

/**
 * The real server's side of the purchase runs, through the API of the whole app, once per shape
 * in BENCH_SHAPES (each runs on data of its own, made alike): the reserve pool (RESERVE_SEATS
 * seats) and its users (one per HOLDS_PER_USER seats, since a user holds at most that many), and
 * per flash sale a SALE_SEATS-seat event and SALE_BUYERS buyers granted SALE_BALANCE credits each.
 */
export async function purchaseSetup(db: BenchDb): Promise<PurchaseSetup> {
  const server = await startPurchaseSetupServer(db, ADMIN);
  const { base } = server;
  try {
    const { access_token: admin } = await api<{ access_token: string }>(base, 'POST', '/api/auth/login', ADMIN);
    const addEvent = await benchVenue(base, admin, 'Bench Purchase Hall');
    const create = async (name: string, seats: number) => {
      const eventId = await addEvent(name, seats);
      const full = await api<{ seats: { seat_id: string }[] }>(base, 'GET', `/api/events/${eventId}`);
      if (full.seats.length !== seats) throw new Error(`${name}: ${full.seats.length} seats, ${seats} asked`);
      return { eventId, seatIds: full.seats.map((s) => s.seat_id) };
    };

    const reserveUsers = Math.ceil(RESERVE_SEATS / HOLDS_PER_USER);
    const perShape = reserveUsers + SALES.length * SALE_BUYERS;
    const events: Partial<
      Record<Shape, Omit<ShapeData, 'reserveUsers' | 'sales'> & { sales: { eventId: string; seatIds: string[] }[] }>
    > = {};
    for (const shape of SHAPES) {
      log(
        db.kind,
        `purchase setup (${shape}): the reserve pool of ${RESERVE_SEATS} seats and ${SALES.length} sale event(s)`,
      );
      const pool = { reserveEventIds: [] as string[], reserveSeatIds: [] as string[] };
      for (let left = RESERVE_SEATS, n = 1; left > 0; left -= MAX_EVENT_SEATS, n++) {
        const e = await create(`Bench reserve pool ${n} (${shape})`, Math.min(left, MAX_EVENT_SEATS));
        pool.reserveEventIds.push(e.eventId);
        pool.reserveSeatIds.push(...e.seatIds);
      }
      const sales = [];
      for (const [i, sale] of SALES.entries())
        sales.push(await create(`Bench ${sale.scenario} (${i + 1}, ${shape})`, SALE_SEATS));
      events[shape] = { ...pool, sales };
    }

    const users = perShape * SHAPES.length;
    log(db.kind, `purchase setup: registering and logging in ${users} users`);
    const started = performance.now();
    const buyers = await registerUsers(base, users);
    const shapes: PurchaseSetup['shapes'] = {};
    for (const [k, shape] of SHAPES.entries()) {
      const mine = buyers.slice(k * perShape, (k + 1) * perShape);
      const saleBuyers = mine.slice(reserveUsers);
      await inParallel(saleBuyers, 8, (b) =>
        api(base, 'POST', '/api/admin/credits', { user_id: b.userId, amount: SALE_BALANCE, reason: 'bench' }, admin),
      );
      const e = events[shape] as NonNullable<(typeof events)[Shape]>;
      shapes[shape] = {
        reserveEventIds: e.reserveEventIds,
        reserveSeatIds: e.reserveSeatIds,
        reserveUsers: mine.slice(0, reserveUsers),
        sales: e.sales.map((sale, i) => ({
          ...sale,
          buyers: saleBuyers.slice(i * SALE_BUYERS, (i + 1) * SALE_BUYERS),
        })),
      };
    }
    return { shapes, usersMs: Math.round(performance.now() - started), users };
  } finally {
    await stopChild(server);
  }
}

/** How each side takes a reserve and a pay. */
export interface Side {
  target: PurchaseRow['target'];
  sale: (base: string) => SaleTarget;
  /** The reserve of one seat, as autocannon sends it. */
  reserve: (seatId: string, buyer: Buyer) => { path: string; headers: Record<string, string>; body: unknown };
  /** Seats HELD in the reserve pool (the real server's: the seats of these events). */
  held: (eventIds: readonly string[]) => Promise<number>;
  /** Whether a user may hold at most HOLDS_PER_USER seats (the baseline has no such limit). */
  holdLimit: boolean;
}

const bearer = (b: Buyer): Record<string, string> => ({ authorization: `Bearer ${b.token}` });

/** Seats HELD in these events of the event module. */
async function heldIn(db: BenchDb, eventIds: readonly string[]): Promise<number> {
  const [row] = await db.select<{ n: number | string }>(
    'event',
    `select count(*) as n from {seats} where status = 'HELD' and event_id in (${eventIds.map(() => '?').join(', ')})`,
    [...eventIds],
  );
  return Number(row?.n ?? 0);
}

/** The real server, in one process (`server`) or split (`split`): the same API either way. */
export const serverSide = (db: BenchDb, target: 'server' | 'split' = 'server'): Side => ({
  target,
  sale: (base) => ({
    base,
    reservePath: '/api/reserve',
    payPath: '/api/pay',
    headers: bearer,
    reserveBody: (_, seatIds) => ({ seat_ids: seatIds }),
  }),
  reserve: (seatId, b) => ({ path: '/api/reserve', headers: bearer(b), body: { seat_id: seatId } }),
  held: (eventIds) => heldIn(db, eventIds),
  holdLimit: true,
});

const baselineSide = (db: BenchDb): Side => ({
  target: 'baseline',
  sale: (base) => ({
    base,
    reservePath: '/reserve',
    payPath: '/pay',
    headers: () => ({}),
    reserveBody: (b, seatIds) => ({ seat_ids: seatIds, user_id: b.userId }),
  }),
  reserve: (seatId, b) => ({ path: '/reserve', headers: {}, body: { seat_ids: [seatId], user_id: b.userId } }),
  held: async () => {
    const [row] = await db.select<{ n: number }>('baseline', `select count(*) as n from {seats} where status = 'HELD'`);
    return Number(row?.n ?? 0);
  },
  holdLimit: false,
});

/**
 * POST /api/reserve (or the baseline's /reserve) of one seat at 50 connections, after a warm-up:
 * every request a seat of the pool never drawn before, in a random order, and the next user in
 * turn, so that no user passes the hold limit until the pool wraps. Nothing is reset in between:
 * the warm-up's holds stay, on seats and users the run does not draw again.
 */
async function reserveRun(db: BenchDb, side: Side, on: Running, pool: Pool, users: readonly Buyer[]) {
  const { seatIds } = pool;
  const base = on.reserveBase;
  const order = shuffled(seatIds);
  let sent = 0;
  const options = (duration: number): autocannon.Options => ({
    url: base,
    connections: RESERVE_CONNECTIONS,
    duration,
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => {
          const n = sent++;
          const r = side.reserve(order[n % order.length], users[n % users.length]);
          return {
            ...req,
            path: r.path,
            headers: { ...req.headers, 'content-type': 'application/json', ...r.headers },
            body: JSON.stringify(r.body),
          };
        },
      },
    ],
  });
  let warm2xx = 0;
  if (WARMUP) warm2xx = (await run(options(WARMUP)))['2xx'];
  log(db.kind, `reserve, ${on.label}, ${RESERVE_CONNECTIONS} connections, ${DURATION} s`);
  const meter = cpuMeter(db, on.pids);
  const r = await run(options(DURATION));
  const cpuPct = meter();
  const server = side.target !== 'baseline';
  const row = summarize('reserve c50', server ? 'server' : 'baseline', server ? 'warn' : null, r, true);
  const heldAfter = await side.held(pool.eventIds);
  const wrapped = sent > (side.holdLimit ? Math.min(order.length, users.length * HOLDS_PER_USER) : order.length);
  if (heldAfter < warm2xx + row.ok2xx || heldAfter > warm2xx + row.ok2xx + 2 * RESERVE_CONNECTIONS) {
    log(db.kind, `WARNING: ${warm2xx + row.ok2xx} reserves answered 2xx but ${heldAfter} seats are HELD`);
  }
  const statusClass = (lo: number) =>
    Object.entries(row.statuses)
      .filter(([code]) => Number(code) >= lo && Number(code) < lo + 100)
      .reduce((n, [, c]) => n + c, 0);
  const out: PurchaseRow = {
    scenario: 'reserve, 1 seat',
    target: side.target,
    routing: on.routing,
    connections: RESERVE_CONNECTIONS,
    durationS: row.durationS,
    reqPerSec: row.reqPerSec,
    seatsPerSec: row.ok2xx / row.durationS,
    p50Ms: row.p50Ms,
    p99Ms: row.p99Ms,
    ok2xx: row.ok2xx,
    c4xx: statusClass(400),
    c5xx: statusClass(500),
    errors: r.errors + r.timeouts,
    heldAfter,
    poolWrapped: wrapped,
    cpuPct,
    loadAvg1m: os.loadavg()[0],
    raw: r,
  };
  return out;
}

/** A flash sale and its oversell check; `signal` may end it before it sells out. */
export async function saleRun(
  db: BenchDb,
  side: Side,
  base: string,
  sale: Sale,
  seatIds: readonly string[],
  buyers: readonly Buyer[],
  tables: SaleTables,
  signal?: AbortSignal,
  on?: Pick<Running, 'label' | 'pids' | 'routing'>,
): Promise<PurchaseRow> {
  log(
    db.kind,
    `${sale.scenario}, ${on?.label ?? side.target}: ${seatIds.length} seats, ${buyers.length} buyers, ${SALE_CONNECTIONS} connections`,
  );
  const meter = on ? cpuMeter(db, on.pids) : undefined;
  const result = await flashSale(side.sale(base), {
    seatIds,
    buyers,
    connections: SALE_CONNECTIONS,
    seatsPerOrder: sale.seatsPerOrder,
    signal,
  });
  const cpuPct = meter?.();
  const loadAvg1m = os.loadavg()[0];
  const check = await checkSale(db, tables);
  if (result.stopped) log(db.kind, `WARNING: the sale stopped early: ${result.stopped}`);
  if (check.oversells > 0) log(db.kind, `OVERSOLD: ${check.oversells} seats, e.g. ${check.examples.join('; ')}`);
  if (check.soldInDb !== result.seatsSold) {
    log(db.kind, `WARNING: ${result.seatsSold} seats paid with 2xx but ${check.soldInDb} SOLD in the database`);
  }
  return {
    scenario: sale.scenario,
    target: side.target,
    routing: on?.routing,
    connections: SALE_CONNECTIONS,
    buyers: buyers.length,
    durationS: result.elapsedS,
    reqPerSec: result.reqPerSec,
    seatsPerSec: result.seatsPerSec,
    p50Ms: result.latency.all.p50Ms,
    p99Ms: result.latency.all.p99Ms,
    ok2xx: result.ok2xx,
    c4xx: result.c4xx,
    c5xx: result.c5xx,
    errors: result.errors,
    oversells: check.oversells,
    cpuPct,
    loadAvg1m,
    sale: { ...result, check },
  };
}

const CONFIRMED_SEATS = `select os.seat_id, o.id as order_id, o.user_id from {order_seats} os
  join {orders} o on o.id = os.order_id where o.status = 'CONFIRMED'`;

/** Where the real server's sale of one event is read back from. */
export const serverSaleTables = (eventId: string): SaleTables => ({
  seats: {
    module: 'event',
    sql: 'select id, status, owner_user_id, sold_order_id from {seats} where event_id = ?',
    params: [eventId],
  },
  confirmed: { module: 'order', sql: CONFIRMED_SEATS },
});

/** A server under load: where its clients send the reserve run and the sales, and its processes. */
interface Running {
  /** For the log. */
  label: string;
  reserveBase: string;
  saleBase: string;
  routing?: Routing;
  pids: () => Record<string, number[]>;
  stop: () => Promise<void>;
}

const pidsOf = (name: string, c: Child): Record<string, number[]> =>
  c.server.child.pid ? { [name]: [c.server.child.pid] } : {};

/** The reserve pool: its seats and the events they are in. */
interface Pool {
  seatIds: readonly string[];
  eventIds: readonly string[];
}

/**
 * One shape of the real server, LOG_LEVEL=warn: the whole app in one process (`single`), or the
 * four slices in four processes behind nginx or reached directly (`split`, bench/lib/split.ts).
 */
async function startShape(db: BenchDb, shape: Shape): Promise<Running> {
  if (shape === 'single') {
    const server = await startAppServer(db, CPU_PROF);
    return {
      label: 'whole app, 1 process',
      reserveBase: server.base,
      saleBase: server.base,
      pids: () => pidsOf('app', server),
      stop: () => stopChild(server),
    };
  }
  const split = await startSplit(db);
  try {
    return {
      label: `split, 4 processes, ${split.routing === 'nginx' ? 'through nginx' : 'each request to its slice'}`,
      reserveBase: split.baseFor('/api/reserve'),
      saleBase: split.baseFor('/api/reserve', '/api/pay'),
      routing: split.routing,
      pids: () => split.pids(),
      stop: () => split.stop(),
    };
  } catch (err) {
    await split.stop();
    throw err;
  }
}

/** The real server in one shape: the reserve run, then the flash sales, each on the shape's own data. */
async function shapeRuns(db: BenchDb, shape: Shape, d: ShapeData): Promise<PurchaseRow[]> {
  const side = serverSide(db, shape === 'single' ? 'server' : 'split');
  const rows: PurchaseRow[] = [];
  const on = await startShape(db, shape);
  try {
    rows.push(
      await reserveRun(db, side, on, { seatIds: d.reserveSeatIds, eventIds: d.reserveEventIds }, d.reserveUsers),
    );
    for (const [i, sale] of SALES.entries()) {
      const { eventId, seatIds, buyers } = d.sales[i];
      rows.push(await saleRun(db, side, on.saleBase, sale, seatIds, buyers, serverSaleTables(eventId), undefined, on));
    }
  } finally {
    await on.stop();
  }
  return rows;
}

/** The raw-SQL baseline, on fresh tables of its own for each run. */
async function baselineRuns(db: BenchDb): Promise<PurchaseRow[]> {
  const side = baselineSide(db);
  const rows: PurchaseRow[] = [];
  const baseline = await startSaleBaseline(db);
  const fresh = async (seats: number) => {
    const d = await api<{ seat_ids: string[]; user_ids: string[] }>(baseline.base, 'POST', '/setup', {
      seats,
      buyers: SALE_BUYERS,
      balance: SALE_BALANCE * 100,
    });
    return { seatIds: d.seat_ids, buyers: d.user_ids.map((userId) => ({ userId })) };
  };
  try {
    const on: Running = {
      label: 'baseline',
      reserveBase: baseline.base,
      saleBase: baseline.base,
      pids: () => pidsOf('baseline', baseline),
      stop: () => stopChild(baseline),
    };
    const pool = await fresh(BASELINE_RESERVE_SEATS);
    rows.push(await reserveRun(db, side, on, { seatIds: pool.seatIds, eventIds: [] }, pool.buyers));
    for (const sale of SALES) {
      const { seatIds, buyers } = await fresh(SALE_SEATS);
      rows.push(
        await saleRun(
          db,
          side,
          baseline.base,
          sale,
          seatIds,
          buyers,
          {
            seats: { module: 'baseline', sql: 'select id, status, owner_user_id, sold_order_id from {seats}' },
            confirmed: { module: 'baseline', sql: CONFIRMED_SEATS },
          },
          undefined,
          on,
        ),
      );
    }
  } finally {
    await stopChild(baseline);
  }
  return rows;
}

export interface PurchaseResult {
  setup: { users: number; usersMs: number };
  rows: PurchaseRow[];
}

/**
 * The purchase part of the bench on one database: the setup, the real server's runs in each shape
 * of BENCH_SHAPES (the single process first; before the next shape every held seat goes back to
 * AVAILABLE and the seats table is rebuilt compact, as before the first), then the baseline's (one
 * server under load at a time). Each real server row gets its ratio to the baseline row of the
 * same scenario, in seats per second, and each split row its ratios to the single process's.
 */
export async function purchaseRuns(db: BenchDb, afterHolds: boolean): Promise<PurchaseResult> {
  // The hold runs' last holds go, and the seats table is compact again.
  if (afterHolds) await db.reset(true);
  const s = await purchaseSetup(db);
  const rows: PurchaseRow[] = [];
  for (const [i, shape] of SHAPES.entries()) {
    if (i > 0) await db.reset(true);
    rows.push(...(await shapeRuns(db, shape, s.shapes[shape] as ShapeData)));
  }
  rows.push(...(await baselineRuns(db)));
  for (const r of rows) {
    const base = rows.find((b) => b.target === 'baseline' && b.scenario === r.scenario);
    if (base && base.seatsPerSec > 0) r.ratioToBaseline = r.seatsPerSec / base.seatsPerSec;
    const single = rows.find((b) => b.target === 'server' && b.scenario === r.scenario);
    if (r.target === 'split' && single && single.seatsPerSec > 0 && single.p99Ms > 0) {
      r.vsSingle = { throughput: r.seatsPerSec / single.seatsPerSec, p99: r.p99Ms / single.p99Ms };
    }
  }
  return { setup: { users: s.users, usersMs: s.usersMs }, rows };
}
