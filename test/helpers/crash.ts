import { createRequire } from 'node:module';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import pg from 'pg';
import { createApp, loadAppConfig } from '../../src/app.js';
import type { Clock } from '../../src/kernel/clock.js';
import type { Kernel } from '../../src/kernel/kernel.js';
import { listen } from '../../src/kernel/server.js';
import { request, TEST_ADMIN, type TestApp } from './app.js';
import { freePort, type Server, spawnServer, waitForHealth } from './process.js';

/**
 * What a crash test needs beside the API: the databases of a server read directly (that of an
 * in-process kernel, or the SQLite files and PostgreSQL schemas of a spawned process), the
 * product's invariants checked on them, and the two outcomes a recovered purchase may have.
 */

export type ModuleName = 'user' | 'event' | 'order' | 'orchestrator';

/** Raw reads on the modules' databases: `?` placeholders, `t(name)` names one of the module's tables. */
export interface Reader {
  all<T = Record<string, unknown>>(
    module: ModuleName,
    sql: (t: (name: string) => string) => string,
    params?: unknown[],
  ): Promise<T[]>;
  close(): Promise<void>;
}

const quote = (id: string) => `"${id.replace(/"/g, '""')}"`;

/** The databases of a kernel in this process, through its own connections. */
export function kernelReader(kernel: Kernel): Reader {
  return {
    all(module, sql, params = []) {
      const db = kernel.databases.get(module);
      if (!db) throw new Error(`module ${module} has no database in this kernel`);
      return db.all(
        sql((name) => db.table(name)),
        params,
      );
    },
    close: async () => undefined,
  };
}

interface SqliteStatement {
  all(...params: unknown[]): unknown[];
}
interface SqliteConnection {
  prepare(sql: string): SqliteStatement;
  close(): void;
}
type SqliteOpen = new (file: string, options: { readonly: boolean; fileMustExist: boolean }) => SqliteConnection;

/**
 * The SQLite files of a spawned process (one per module in its data directory), opened read-only
 * beside the running server: WAL lets a reader see the last commit without blocking the writer.
 * better-sqlite3 is a dependency of @mikro-orm/better-sqlite and has no types of its own here.
 */
export function sqliteReader(dataDir: string): Reader {
  const open = createRequire(import.meta.url)('better-sqlite3') as SqliteOpen;
  const connections = new Map<ModuleName, SqliteConnection>();
  const connection = (module: ModuleName) => {
    let c = connections.get(module);
    if (!c) {
      c = new open(join(dataDir, `${module}.sqlite`), { readonly: true, fileMustExist: true });
      connections.set(module, c);
    }
    return c;
  };
  return {
    async all<T>(module: ModuleName, sql: (t: (name: string) => string) => string, params: unknown[] = []) {
      return connection(module)
        .prepare(sql(quote))
        .all(...params) as T[];
    },
    async close() {
      for (const c of connections.values()) c.close();
      connections.clear();
    },
  };
}

/** The PostgreSQL database of a spawned process: one schema per module. */
export async function pgReader(url: string): Promise<Reader> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    async all<T>(module: ModuleName, sql: (t: (name: string) => string) => string, params: unknown[] = []) {
      let n = 0;
      const text = sql((name) => `${quote(module)}.${quote(name)}`).replace(/\?/g, () => `$${++n}`);
      return (await client.query(text, params)).rows as T[];
    },
    close: () => client.end(),
  };
}

/** A stored timestamp (SQLite: epoch ms, PostgreSQL: a Date) as epoch ms. */
const ms = (v: unknown): number | null =>
  v === null || v === undefined ? null : v instanceof Date ? v.getTime() : Number(v);

export interface SagaRow {
  id: string;
  kind: string;
  order_id: string | null;
  user_id: string | null;
  step: string;
  status: string;
}

export interface SeatRow {
  id: string;
  status: string;
  owner_user_id: string | null;
  hold_order_id: string | null;
  held_until: number | null;
  sold_order_id: string | null;
  price: number;
  price_paid: number | null;
}

export interface OrderRow {
  id: string;
  user_id: string;
  status: string;
  total: number;
}

/** Every row the invariants speak of, read table by table; amounts are integer cents. */
export interface Snapshot {
  /** The time the holds are compared with (the server's clock, which a test may have moved). */
  now: number;
  users: { id: string; email: string; credit_balance: number; frozen_credits: number }[];
  ledger: { user_id: string; type: string; amount: number; reference_id: string | null }[];
  seats: SeatRow[];
  orders: OrderRow[];
  orderSeats: { order_id: string; seat_id: string; price: number }[];
  transfers: TransferRow[];
  sagas: SagaRow[];
}

export interface TransferRow {
  id: string;
  seat_id: string;
  seller_user_id: string;
  buyer_user_id: string;
  credits_amount: number;
  status: string;
  frozen_amount: number | null;
}

/**
 * The step a saga has recorded when a fault point of its flow fires: every point fires after its
 * step is recorded, and `<kind>.done` after the last step (`order`), before the finish record.
 */
export const stepOf = (point: string) => {
  const step = point.slice(point.indexOf('.') + 1);
  return step === 'done' ? 'order' : step;
};

export function readSagas(reader: Reader): Promise<SagaRow[]> {
  return reader.all<SagaRow>(
    'orchestrator',
    (t) => `select id, kind, order_id, user_id, step, status from ${t('sagas')} order by created_at, id`,
  );
}

export async function snapshot(reader: Reader, now = Date.now()): Promise<Snapshot> {
  const users = await reader.all<Snapshot['users'][number]>(
    'user',
    (t) => `select id, email, credit_balance, frozen_credits from ${t('users')}`,
  );
  const ledger = await reader.all<Snapshot['ledger'][number]>(
    'user',
    (t) => `select user_id, type, amount, reference_id from ${t('credit_transactions')}`,
  );
  const seats = await reader.all<SeatRow>(
    'event',
    (t) => `select id, status, owner_user_id, hold_order_id, held_until, sold_order_id, price, price_paid
            from ${t('seats')}`,
  );
  const orders = await reader.all<OrderRow>('order', (t) => `select id, user_id, status, total from ${t('orders')}`);
  const orderSeats = await reader.all<Snapshot['orderSeats'][number]>(
    'order',
    (t) => `select order_id, seat_id, price from ${t('order_seats')}`,
  );
  const transfers = await reader.all<TransferRow>(
    'order',
    (t) =>
      `select id, seat_id, seller_user_id, buyer_user_id, credits_amount, status, frozen_amount from ${t('transfers')}`,
  );
  return {
    now,
    transfers: transfers.map((tr) => ({
      ...tr,
      credits_amount: Number(tr.credits_amount),
      frozen_amount: tr.frozen_amount === null ? null : Number(tr.frozen_amount),
    })),
    users: users.map((u) => ({
      ...u,
      credit_balance: Number(u.credit_balance),
      frozen_credits: Number(u.frozen_credits),
    })),
    ledger: ledger.map((l) => ({ ...l, amount: Number(l.amount) })),
    seats: seats.map((s) => ({
      ...s,
      held_until: ms(s.held_until),
      price: Number(s.price),
      price_paid: s.price_paid === null ? null : Number(s.price_paid),
    })),
    orders: orders.map((o) => ({ ...o, total: Number(o.total) })),
    orderSeats: orderSeats.map((os) => ({ ...os, price: Number(os.price) })),
    sagas: await readSagas(reader),
  };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
const SOLD = new Set(['SOLD', 'CHECKED_IN']);
/** Ledger types that move credits for a purchase: what a user paid net for their orders. */
const PURCHASE_TYPES = new Set(['PURCHASE', 'REFUND']);
const GRANT_TYPES = new Set(['GRANT', 'TOPUP']);

export interface InvariantOptions {
  /** Credits granted to everyone, in cents (GRANT and TOPUP entries). */
  granted: number;
  /** How long a swept hold may outlive its held_until (default 1.5 s: a sweep interval and slack). */
  sweepGraceMs?: number;
}

/**
 * The product's invariants 1–4 (seats, credits, holds, one transfer under way per seat) as the order, event and user tables must
 * show them once no saga runs, as sentences naming what is wrong (none: all hold). Meant as
 * the purchase suite's checkInvariants, but read from any server's databases, plus what a
 * settled crash must leave: no hold of an order that is not PENDING, or of no order at all.
 */
export function invariantViolations(snap: Snapshot, options: InvariantOptions): string[] {
  const out: string[] = [];
  const orderById = new Map(snap.orders.map((o) => [o.id, o]));
  const seatById = new Map(snap.seats.map((s) => [s.id, s]));
  const seatsOf = (orderId: string) => snap.orderSeats.filter((os) => os.order_id === orderId);
  // A seat that changed hands after its sale is owned by whom its transfers say, not its order's user.
  const transferred = new Set(
    snap.transfers.filter((tr) => ['COMPLETED', 'DISPUTED', 'REVERSED'].includes(tr.status)).map((tr) => tr.seat_id),
  );
  const live = (s: SeatRow) => s.status === 'HELD' && s.held_until !== null && s.held_until > snap.now;

  // 2. Credits are never created or lost.
  for (const u of snap.users) {
    const rows = snap.ledger.filter((l) => l.user_id === u.id);
    const ledger = sum(rows.map((l) => l.amount));
    if (u.credit_balance + u.frozen_credits !== ledger) {
      out.push(`user ${u.email}: balance ${u.credit_balance} + frozen ${u.frozen_credits} ≠ ledger sum ${ledger}`);
    }
    if (u.credit_balance < 0 || u.frozen_credits < 0) out.push(`user ${u.email}: a balance below zero`);
    const paid = -sum(rows.filter((l) => PURCHASE_TYPES.has(l.type)).map((l) => l.amount));
    const confirmed = sum(
      snap.orders.filter((o) => o.user_id === u.id && o.status === 'CONFIRMED').map((o) => o.total),
    );
    if (paid !== confirmed) out.push(`user ${u.email}: paid ${paid} net, but their CONFIRMED orders cost ${confirmed}`);
  }
  const granted = sum(snap.ledger.filter((l) => GRANT_TYPES.has(l.type)).map((l) => l.amount));
  if (granted !== options.granted) out.push(`ledger grants ${granted}, the test granted ${options.granted}`);
  const balances = sum(snap.users.map((u) => u.credit_balance + u.frozen_credits));
  const charged = sum(snap.orders.filter((o) => o.status === 'CONFIRMED').map((o) => o.total));
  if (balances + charged !== options.granted) {
    out.push(`granted ${options.granted} ≠ balances ${balances} + charged ${charged}`);
  }

  // 1. A seat is never sold twice; an order holds, and owns, all its seats or none.
  for (const s of snap.seats.filter((seat) => SOLD.has(seat.status))) {
    const sales = snap.orderSeats
      .filter((os) => os.seat_id === s.id)
      .map((os) => orderById.get(os.order_id))
      .filter((o) => o?.status === 'CONFIRMED');
    if (sales.length !== 1) {
      out.push(`seat ${s.id} is ${s.status} with ${sales.length} CONFIRMED orders`);
      continue;
    }
    const [order] = sales;
    if (s.owner_user_id !== order!.user_id && !transferred.has(s.id)) {
      out.push(`seat ${s.id}: owner is not the user of order ${order!.id}`);
    }
    if (s.sold_order_id !== order!.id) out.push(`seat ${s.id}: sold_order_id ${s.sold_order_id} ≠ ${order!.id}`);
  }
  for (const o of snap.orders) {
    const own = seatsOf(o.id);
    if (own.length === 0) out.push(`order ${o.id} (${o.status}) has no seats`);
    if (sum(own.map((os) => os.price)) !== o.total) out.push(`order ${o.id}: total ${o.total} ≠ its seats' prices`);
    if (o.status === 'CONFIRMED') {
      for (const os of own) {
        const s = seatById.get(os.seat_id);
        const owner = s && (s.owner_user_id === o.user_id || transferred.has(s.id));
        if (!s || !SOLD.has(s.status) || s.sold_order_id !== o.id || !owner) {
          out.push(
            `CONFIRMED order ${o.id} does not own seat ${os.seat_id} (${s?.status}, sold to ${s?.sold_order_id})`,
          );
        } else if (s.price_paid !== os.price) {
          out.push(`seat ${s.id}: price_paid ${s.price_paid} ≠ ${os.price} in order ${o.id}`);
        }
      }
    }
    const held = own.filter((os) => {
      const s = seatById.get(os.seat_id);
      return s && live(s) && s.hold_order_id === o.id;
    }).length;
    if (held !== 0 && held !== own.length)
      out.push(`order ${o.id} (${o.status}) holds ${held} of its ${own.length} seats`);
    if (held !== 0 && o.status !== 'PENDING') out.push(`order ${o.id} is ${o.status} but still holds its seats`);
  }
  for (const s of snap.seats.filter(live)) {
    const order = s.hold_order_id ? orderById.get(s.hold_order_id) : undefined;
    if (!order) out.push(`seat ${s.id} is held for ${s.hold_order_id}, which is no order`);
    else if (!seatsOf(order.id).some((os) => os.seat_id === s.id)) {
      out.push(`seat ${s.id} is held for order ${order.id}, which does not contain it`);
    }
  }

  // 4. A seat has at most one active transfer.
  const active = snap.transfers.filter((tr) => tr.status === 'INITIATED' || tr.status === 'PENDING_OTP');
  for (const seat of new Set(active.map((tr) => tr.seat_id))) {
    const n = active.filter((tr) => tr.seat_id === seat).length;
    if (n > 1) out.push(`seat ${seat} has ${n} transfers under way`);
  }

  // 3. A hold ends.
  const grace = options.sweepGraceMs ?? 1500;
  for (const s of snap.seats) {
    if (s.status === 'HELD' && s.held_until !== null && s.held_until + grace < snap.now) {
      out.push(`seat ${s.id} is still HELD ${snap.now - s.held_until} ms past its held_until`);
    }
  }
  return out;
}

/** Asserts every invariant on the snapshot; the message lists all that fail at once. */
export function checkInvariants(t: ExecutionContext, snap: Snapshot, options: InvariantOptions) {
  const found = invariantViolations(snap, options);
  t.deepEqual(found, [], `invariants broken:\n${found.join('\n')}`);
}

/**
 * Polls the saga log until no saga is RUNNING or `timeoutMs` has passed, calling `poke` first on
 * each round (an in-process test runs a recovery tick there); resolves with the last rows.
 */
export async function settledSagas(
  reader: Reader,
  options: { timeoutMs?: number; poke?: () => Promise<void> } = {},
): Promise<SagaRow[]> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    await options.poke?.();
    const sagas = await readSagas(reader);
    if (!sagas.some((s) => s.status === 'RUNNING') || Date.now() > deadline) return sagas;
    await sleep(200);
  }
}

export interface Outcome {
  /** Which of the allowed ends the purchase reached (for the test's log). */
  outcome: string;
  /** What is wrong with it, as sentences; none when the outcome is allowed. */
  problems: string[];
}

/**
 * A reserve whose process died, after recovery: the order FAILED (or never created) with every
 * seat AVAILABLE again, or the whole order PENDING with every seat held for it.
 */
export function reserveOutcome(snap: Snapshot, userId: string, seatIds: string[]): Outcome {
  const problems: string[] = [];
  const orders = snap.orders.filter((o) => o.user_id === userId);
  const seats = seatIds.map((id) => snap.seats.find((s) => s.id === id)!);
  const sagas = snap.sagas.filter((s) => s.kind === 'reserve' && s.user_id === userId);
  if (sagas.length === 0) problems.push('no reserve saga was logged for the user');
  if (orders.length > 1) problems.push(`the user has ${orders.length} orders, not at most one`);
  const order = orders[0];
  if (order?.status === 'PENDING') {
    for (const s of seats) {
      if (s.status !== 'HELD' || s.hold_order_id !== order.id) {
        problems.push(`order PENDING, but seat ${s.id} is ${s.status} for ${s.hold_order_id}`);
      }
    }
    for (const s of sagas.filter((saga) => saga.order_id === order.id && saga.status !== 'DONE')) {
      problems.push(`order PENDING (forward), but its reserve saga ended ${s.status}`);
    }
    return { outcome: 'PENDING, all seats held', problems };
  }
  if (order && order.status !== 'FAILED') problems.push(`the order is ${order.status}, neither FAILED nor PENDING`);
  for (const s of seats) {
    if (s.status !== 'AVAILABLE' || s.owner_user_id !== null) {
      problems.push(`order ${order?.status ?? 'absent'}, but seat ${s.id} is ${s.status} (owner ${s.owner_user_id})`);
    }
  }
  for (const s of sagas.filter((saga) => saga.status === 'DONE')) {
    problems.push(`the seats were given back, but reserve saga ${s.id} says DONE`);
  }
  return { outcome: `${order ? 'FAILED' : 'no order'}, all seats AVAILABLE`, problems };
}

/**
 * A pay whose process died, after recovery: CONFIRMED with every seat SOLD to the user and the
 * total charged once, or nothing charged net (never charged, or charged and refunded once) and no
 * seat sold. `forward`: the seats were sold and paid before the crash, so only CONFIRMED will do.
 */
export function payOutcome(
  snap: Snapshot,
  purchase: { orderId: string; userId: string; seatIds: string[]; granted: number; forward?: boolean },
): Outcome {
  const problems: string[] = [];
  const order = snap.orders.find((o) => o.id === purchase.orderId);
  const user = snap.users.find((u) => u.id === purchase.userId);
  const rows = snap.ledger.filter((l) => l.user_id === purchase.userId);
  const purchases = rows.filter((l) => l.type === 'PURCHASE');
  const refunds = rows.filter((l) => l.type === 'REFUND');
  const seats = purchase.seatIds.map((id) => snap.seats.find((s) => s.id === id)!);
  const sagas = snap.sagas.filter((s) => s.kind === 'pay' && s.order_id === purchase.orderId);
  if (!order || !user) return { outcome: 'lost', problems: ['the order or the user is gone'] };
  if (sagas.length === 0) problems.push('no pay saga was logged for the order');
  if (order.status === 'CONFIRMED') {
    for (const s of seats) {
      if (s.status !== 'SOLD' || s.owner_user_id !== purchase.userId || s.sold_order_id !== order.id) {
        problems.push(`order CONFIRMED, but seat ${s.id} is ${s.status} (owner ${s.owner_user_id})`);
      }
    }
    if (user.credit_balance !== purchase.granted - order.total) {
      problems.push(`order CONFIRMED, balance ${user.credit_balance} ≠ ${purchase.granted} - ${order.total}`);
    }
    if (purchases.length !== 1 || refunds.length !== 0) {
      problems.push(`order CONFIRMED with ${purchases.length} PURCHASE and ${refunds.length} REFUND entries`);
    }
    for (const s of sagas.filter((saga) => saga.status !== 'DONE')) {
      problems.push(`order CONFIRMED, but pay saga ${s.id} ended ${s.status}`);
    }
    return { outcome: 'CONFIRMED, charged once', problems };
  }
  if (purchase.forward) problems.push(`seats sold and paid before the crash, yet the order ended ${order.status}`);
  for (const s of seats.filter((seat) => SOLD.has(seat.status))) {
    problems.push(`order ${order.status}, but seat ${s.id} is ${s.status}`);
  }
  if (user.credit_balance !== purchase.granted) {
    problems.push(`order ${order.status}, balance ${user.credit_balance} ≠ the ${purchase.granted} granted`);
  }
  if (purchases.length > 1 || refunds.length !== purchases.length) {
    problems.push(`order ${order.status} with ${purchases.length} PURCHASE and ${refunds.length} REFUND entries`);
  }
  for (const s of sagas.filter((saga) => saga.status === 'DONE')) {
    problems.push(`order ${order.status}, but pay saga ${s.id} says DONE`);
  }
  return { outcome: `${order.status}, ${purchases.length ? 'refunded' : 'never charged'}`, problems };
}

export function isAllowed(t: ExecutionContext, outcome: Outcome) {
  t.log(`outcome: ${outcome.outcome}`);
  t.deepEqual(outcome.problems, [], `not an allowed outcome:\n${outcome.problems.join('\n')}`);
}

/**
 * The environment of a spawned server in a crash test: fixed secrets (so that a restarted process
 * accepts the tokens of the one before), and short deadlines, leases and sweeps. A dead runner's
 * saga lease is 3 × the port deadline + 2 s, so that recovery takes a saga soon after a restart;
 * the dead process also held the recovery job's own lease, which runs out as soon.
 */
export const crashEnv = (sweepMs: number): Record<string, string> => ({
  JWT_SECRET: 'crash-test-jwt-secret-0123456789',
  SERVICE_TOKEN: 'crash-test-service-token-0123456789',
  INTERNAL_TIMEOUT_MS: '1000',
  SWEEP_INTERVAL_MS: String(sweepMs),
  JOB_LEASE_MS: '1000',
});

/** A spawned server and its base URL. */
export interface Spawned {
  server: Server;
  url: string;
}

/**
 * Spawns the whole app as one process on a free port, without waiting for it (a process that is
 * to die in its start-up recovery may never answer). `dataDir` reuses the SQLite files of an
 * earlier process: a restart.
 */
export async function spawnAt(env: Record<string, string>, dataDir?: string): Promise<Spawned> {
  const port = await freePort();
  const server = spawnServer(
    { ADMIN_EMAIL: TEST_ADMIN.email, ADMIN_PASSWORD: TEST_ADMIN.password, ...env, PORT: String(port) },
    dataDir ? { dataDir } : {},
  );
  return { server, url: `http://127.0.0.1:${port}` };
}

/** As spawnAt, and waits for its /health (long: a busy machine boots slowly, and a dead one fails fast). */
export async function bootServer(env: Record<string, string>, dataDir?: string): Promise<Spawned> {
  const spawned = await spawnAt(env, dataDir);
  try {
    await waitForHealth(spawned.server, spawned.url, 90_000);
  } catch (err) {
    spawned.server.cleanup();
    throw err;
  }
  return spawned;
}

/** A clean stop (SIGTERM), so that nothing moves while the test reads; SIGKILL if it overruns. */
export async function stopServer(server: Server, timeoutMs = 10_000) {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), timeoutMs);
  await server.exited;
  clearTimeout(timer);
}

/**
 * A spawned server seen as a TestApp for the API helpers (users.ts, events.ts), which only send
 * requests: it has `url` and `request`, nothing of a kernel.
 */
export function remoteApp(url: string): TestApp {
  return {
    url,
    sliceUrls: [url],
    request: (method, path, options) => request(url, method, path, options),
  } as TestApp;
}

/**
 * Boots a second kernel on the database of `app` (which must have been closed with
 * `app.running.close()`, not `app.close()`, so that its database is still there): a restart.
 */
export async function restartApp(app: TestApp, env: Record<string, string>, clock?: Clock): Promise<TestApp> {
  const fullEnv = { ...app.env, ...env };
  const kernel = await createApp(loadAppConfig(fullEnv), { clock });
  const running = await listen(kernel, 0, '127.0.0.1');
  const url = `http://127.0.0.1:${running.port}`;
  return {
    kind: app.kind,
    shape: 'single',
    url,
    sliceUrls: [url],
    kernel,
    running,
    env: fullEnv,
    request: (method, path, options) => request(url, method, path, options),
    close: () => running.close(),
  };
}

/** Runs at most `size` of the functions given to it at once, the others in turn. */
export function pool(size: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    while (active >= size) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await fn();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}
