import type { ExecutionContext } from 'ava';
import type { Response, TestApp } from './app.js';
import { isError } from './assert.js';
import type { TestUser } from './users.js';

/** Integer cents of an amount in credits, as the API shows it (never float arithmetic on the result). */
export const cents = (credits: number) => Math.round(credits * 100);

/** POST /api/reserve: one id as `seat_id`, a list as `seat_ids`; `extra` adds fields (user_id, …). */
export function reserve(
  app: TestApp,
  user: TestUser,
  seatIds: string | string[],
  extra: Record<string, unknown> = {},
): Promise<Response> {
  const seats = typeof seatIds === 'string' ? { seat_id: seatIds } : { seat_ids: seatIds };
  return app.request('POST', '/api/reserve', { token: user.token, body: { ...seats, ...extra } });
}

/** POST /api/pay for an order, with an Idempotency-Key when one is given. */
export function pay(app: TestApp, user: TestUser, orderId: string, key?: string): Promise<Response> {
  return app.request('POST', '/api/pay', {
    token: user.token,
    body: { order_id: orderId },
    headers: key ? { 'idempotency-key': key } : {},
  });
}

/** A reserve that must succeed: its `data`. */
export async function held(app: TestApp, user: TestUser, seatIds: string | string[]) {
  const res = await reserve(app, user, seatIds);
  if (res.status !== 200) throw new Error(`reserve: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data;
}

/** Reserve and pay that must both succeed: the pay's `data` and the order id. */
export async function bought(app: TestApp, user: TestUser, seatIds: string | string[]) {
  const order = await held(app, user, seatIds);
  const res = await pay(app, user, order.order_id);
  if (res.status !== 200) throw new Error(`pay: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...res.body.data, order_id: order.order_id as string };
}

/** Flags a user as high risk (pay then needs an OTP). */
export async function flag(app: TestApp, admin: TestUser, userId: string, isFlagged = true) {
  const res = await app.request('PATCH', `/api/admin/users/${userId}`, {
    token: admin.token,
    body: { is_flagged: isFlagged },
  });
  if (res.status !== 200) throw new Error(`flag: ${res.status} ${JSON.stringify(res.body)}`);
}

/** The caller's spendable balance in cents, through the API. */
export async function balanceOf(app: TestApp, user: TestUser): Promise<number> {
  const res = await app.request('GET', '/api/credits/balance', { token: user.token });
  if (res.status !== 200) throw new Error(`balance: ${res.status} ${JSON.stringify(res.body)}`);
  return cents(res.body.data.credit_balance);
}

export interface SeatState {
  id: string;
  event_id: string;
  status: string;
  owner_user_id: string | null;
  held_by_user_id: string | null;
  hold_order_id: string | null;
  /** Epoch milliseconds. */
  held_until: number | null;
  sold_order_id: string | null;
  price_paid: number | null;
}

export interface OrderState {
  id: string;
  user_id: string;
  event_id: string;
  status: string;
  total: number;
  /** Epoch milliseconds. */
  expires_at: number;
  /** In the order the reserve named them. */
  seats: { seat_id: string; price: number }[];
}

const ms = (db: Db, v: unknown) => (v === null || v === undefined ? null : db.date(v).getTime());
type Db = NonNullable<ReturnType<TestApp['kernel']['databases']['get']>>;
const dbOf = (app: TestApp, module: string): Db => {
  const db = app.kernel.databases.get(module);
  if (!db) throw new Error(`module ${module} has no database in this app`);
  return db;
};

/** Every seat's stored row (not as readers see it), numbers and times as numbers. */
export async function seatStates(app: TestApp): Promise<SeatState[]> {
  const db = dbOf(app, 'event');
  const rows = await db.all<Record<string, unknown>>(
    `select id, event_id, status, owner_user_id, held_by_user_id, hold_order_id, held_until, sold_order_id, price_paid
     from ${db.table('seats')}`,
  );
  return rows.map((r) => ({
    ...(r as unknown as SeatState),
    held_until: ms(db, r.held_until),
    price_paid: r.price_paid === null ? null : Number(r.price_paid),
  }));
}

/** Every order with its seats, read from the order module's tables. */
export async function orderStates(app: TestApp): Promise<OrderState[]> {
  const db = dbOf(app, 'order');
  const orders = await db.all<Record<string, unknown>>(
    `select id, user_id, event_id, status, total, expires_at from ${db.table('orders')}`,
  );
  const lines = await db.all<{ order_id: string; seat_id: string; price: number | string }>(
    `select order_id, seat_id, price from ${db.table('order_seats')} order by order_id, position`,
  );
  const byOrder = new Map<string, OrderState>();
  for (const o of orders) {
    byOrder.set(o.id as string, {
      ...(o as unknown as OrderState),
      total: Number(o.total),
      expires_at: ms(db, o.expires_at)!,
      seats: [],
    });
  }
  for (const l of lines) byOrder.get(l.order_id)?.seats.push({ seat_id: l.seat_id, price: Number(l.price) });
  return [...byOrder.values()];
}

/** One order as stored, or undefined. */
export async function orderState(app: TestApp, orderId: string) {
  return (await orderStates(app)).find((o) => o.id === orderId);
}

/** Ledger entries of a user (or of everyone), amounts in cents. */
export async function ledgerOf(app: TestApp, userId?: string) {
  const db = dbOf(app, 'user');
  const rows = await db.all<{ user_id: string; type: string; amount: number | string; reference_id: string | null }>(
    `select user_id, type, amount, reference_id from ${db.table('credit_transactions')}${userId ? ' where user_id = ?' : ''}`,
    userId ? [userId] : [],
  );
  return rows.map((r) => ({ ...r, amount: Number(r.amount) }));
}

/** The rows a purchase may write for these events' seats and these users: seats, orders, ledger. */
export async function stateOf(app: TestApp, scope: { events: string[]; users: string[] }) {
  const [seats, orders, ledger] = await Promise.all([seatStates(app), orderStates(app), ledgerOf(app)]);
  const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
  return {
    seats: seats.filter((s) => scope.events.includes(s.event_id)).sort(byId),
    orders: orders.filter((o) => scope.users.includes(o.user_id)).sort(byId),
    ledger: ledger
      .filter((e) => scope.users.includes(e.user_id))
      .map((e) => JSON.stringify(e))
      .sort(),
  };
}

/**
 * Sends a request that must be refused with `status` and `code`, and asserts that it wrote
 * nothing: no seat of the scope's events changed, no order or ledger entry of its users appeared.
 */
export async function refused(
  t: ExecutionContext,
  app: TestApp,
  scope: { events: string[]; users: string[] },
  send: () => Promise<Response>,
  status: number,
  code: string,
): Promise<Response> {
  const before = await stateOf(app, scope);
  const res = await send();
  isError(t, res, status, code);
  t.deepEqual(await stateOf(app, scope), before, `${code}: nothing held, ordered or charged`);
  return res;
}

/** Users' balances beside their ledger sums, cents. */
async function accounts(app: TestApp) {
  const db = dbOf(app, 'user');
  const users = await db.all<{ id: string; credit_balance: number | string; frozen_credits: number | string }>(
    `select id, credit_balance, frozen_credits from ${db.table('users')}`,
  );
  const sums = new Map<string, number>();
  for (const e of await ledgerOf(app)) sums.set(e.user_id, (sums.get(e.user_id) ?? 0) + e.amount);
  return users.map((u) => ({
    id: u.id,
    balance: Number(u.credit_balance),
    frozen: Number(u.frozen_credits),
    ledger: sums.get(u.id) ?? 0,
  }));
}

/** Seats whose owner changed hands after the sale: their owner and price are the transfer's. */
async function transferredSeats(app: TestApp): Promise<Set<string>> {
  const db = dbOf(app, 'order');
  // The transfers table arrives with the transfer flow; before that no seat has changed hands.
  const rows = await db
    .all<{ seat_id: string }>(
      `select distinct seat_id from ${db.table('transfers')} where status in ('COMPLETED', 'DISPUTED', 'REVERSED')`,
    )
    .catch(() => []);
  return new Set(rows.map((r) => r.seat_id));
}

const SOLD = new Set(['SOLD', 'CHECKED_IN']);
const CHARGED = new Set(['PURCHASE', 'REFUND']);

/**
 * Asserts every invariant of the product that the user, event and order databases can show, after
 * running the hold and order sweepers once (as their interval would): ledger sums equal balances
 * and none is negative; credits granted (`opts.granted` in cents, else the ledger's GRANT and
 * TOPUP entries) equal balances plus the totals of CONFIRMED orders; each order's own ledger
 * entries charge its total once if CONFIRMED and nothing otherwise; every SOLD/CHECKED_IN seat
 * belongs to exactly one CONFIRMED order, which is its sold_order_id and (before any transfer)
 * its owner's; every CONFIRMED order owns all its seats; no order holds only some of its seats
 * and only PENDING orders hold any; no live hold lacks its order; no seat stays HELD, and no
 * order PENDING, past its end once the sweepers ran. Each invariant is one assertion listing
 * every violation. Answers the figures it checked.
 */
export async function checkInvariants(t: ExecutionContext, app: TestApp, opts: { granted?: number } = {}) {
  const sweptAt = app.kernel.clock.now();
  await app.kernel.jobs.run('event', 'hold-sweeper');
  await app.kernel.jobs.run('order', 'order-sweeper');
  const now = app.kernel.clock.now();
  const [users, ledger, seats, orders, transferred] = await Promise.all([
    accounts(app),
    ledgerOf(app),
    seatStates(app),
    orderStates(app),
    transferredSeats(app),
  ]);
  const orderById = new Map(orders.map((o) => [o.id, o]));
  const seatById = new Map(seats.map((s) => [s.id, s]));

  t.deepEqual(
    users.filter((u) => u.balance + u.frozen !== u.ledger || u.balance < 0 || u.frozen < 0),
    [],
    'every balance + frozen equals its ledger sum, and none is below zero',
  );

  const balances = users.reduce((sum, u) => sum + u.balance + u.frozen, 0);
  const confirmed = orders.filter((o) => o.status === 'CONFIRMED');
  const charged = confirmed.reduce((sum, o) => sum + o.total, 0);
  const granted =
    opts.granted ?? ledger.filter((e) => e.type === 'GRANT' || e.type === 'TOPUP').reduce((s, e) => s + e.amount, 0);
  t.is(balances + charged, granted, `credits granted (${granted}) = balances (${balances}) + charged (${charged})`);

  // When the purchase entries name their order, each order is charged its total once, or nothing net.
  const purchases = ledger.filter((e) => CHARGED.has(e.type));
  if (purchases.length && purchases.every((e) => e.reference_id && orderById.has(e.reference_id))) {
    const net = new Map<string, number>();
    for (const e of purchases) net.set(e.reference_id!, (net.get(e.reference_id!) ?? 0) + e.amount);
    t.deepEqual(
      orders
        .map((o) => ({ order: o.id, status: o.status, net: net.get(o.id) ?? 0 }))
        .filter((o) => o.net !== (o.status === 'CONFIRMED' ? -orderById.get(o.order)!.total : 0)),
      [],
      'a CONFIRMED order is charged its total once, any other order nothing net',
    );
  }

  t.deepEqual(
    orders
      .filter((o) => !o.seats.length || o.total !== o.seats.reduce((s, l) => s + l.price, 0))
      .map((o) => ({ order: o.id, total: o.total, seats: o.seats })),
    [],
    "an order's total is the sum of its seats' prices",
  );

  const confirmedOf = new Map<string, string[]>();
  for (const o of confirmed)
    for (const l of o.seats) confirmedOf.set(l.seat_id, [...(confirmedOf.get(l.seat_id) ?? []), o.id]);
  t.deepEqual(
    seats
      .filter((s) => SOLD.has(s.status))
      .filter((s) => {
        const owners = confirmedOf.get(s.id) ?? [];
        if (owners.length !== 1 || s.sold_order_id !== owners[0] || !s.owner_user_id) return true;
        return !transferred.has(s.id) && s.owner_user_id !== orderById.get(owners[0])!.user_id;
      })
      .map((s) => ({
        seat: s.id,
        owner: s.owner_user_id,
        sold_order_id: s.sold_order_id,
        confirmed: confirmedOf.get(s.id),
      })),
    [],
    'every sold seat has exactly one CONFIRMED order, its sold_order_id, whose user owns it (before a transfer)',
  );
  t.deepEqual(
    confirmed
      .filter((o) =>
        o.seats.some((l) => {
          const s = seatById.get(l.seat_id);
          return !s || !SOLD.has(s.status) || s.sold_order_id !== o.id;
        }),
      )
      .map((o) => ({ order: o.id, seats: o.seats.map((l) => seatById.get(l.seat_id)) })),
    [],
    'every CONFIRMED order owns all its seats',
  );

  const live = (s: SeatState) => s.status === 'HELD' && s.held_until !== null && s.held_until > now;
  t.deepEqual(
    orders
      .map((o) => {
        const holding = o.seats.filter((l) => {
          const s = seatById.get(l.seat_id);
          return s && live(s) && s.hold_order_id === o.id && s.held_by_user_id === o.user_id;
        }).length;
        return { order: o.id, status: o.status, holding, of: o.seats.length };
      })
      .filter((o) => (o.status === 'PENDING' ? o.holding !== 0 && o.holding !== o.of : o.holding !== 0)),
    [],
    'a PENDING order holds all of its seats or none, and no other order holds any',
  );
  t.deepEqual(
    seats
      .filter(live)
      .filter((s) => {
        const o = s.hold_order_id ? orderById.get(s.hold_order_id) : undefined;
        return o?.status !== 'PENDING' || o.user_id !== s.held_by_user_id || !o.seats.some((l) => l.seat_id === s.id);
      })
      .map((s) => ({ seat: s.id, hold_order_id: s.hold_order_id, held_by: s.held_by_user_id })),
    [],
    'every live hold belongs to a PENDING order of its holder that contains the seat',
  );

  t.deepEqual(
    seats.filter((s) => s.status === 'HELD' && (s.held_until === null || s.held_until <= sweptAt)).map((s) => s.id),
    [],
    'no seat is HELD past its held_until once the sweeper ran',
  );
  t.deepEqual(
    orders.filter((o) => o.status === 'PENDING' && o.expires_at <= sweptAt).map((o) => o.id),
    [],
    'no order is PENDING past its expiry once the sweeper ran',
  );
  return { balances, charged, granted, sold: seats.filter((s) => SOLD.has(s.status)).length, orders: orders.length };
}
