import type { ExecutionContext } from 'ava';
import type { Response, TestApp } from './app.js';
import { grant, newUser, type TestUser } from './users.js';

/**
 * Helpers of the purchase storms (test/purchase/concurrency.test.ts, flash-sale.test.ts): many
 * buyers at once, the answers tallied, and afterwards the product's invariants read from the
 * three databases and checked all together, so that a storm ends in a state a serial run could
 * have produced.
 */

/** Maps `items` through `fn`, at most `limit` at a time, keeping their order. */
export async function inParallel<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** `n` fresh customers, logged in, each granted `credits` (none when 0); a few registrations at a time. */
export function newBuyers(app: TestApp, admin: TestUser, n: number, credits: number | ((i: number) => number) = 0) {
  const amount = typeof credits === 'number' ? () => credits : credits;
  return inParallel(
    Array.from({ length: n }, (_, i) => i),
    8,
    async (i) => {
      const user = await newUser(app);
      const credited = amount(i);
      if (credited > 0) await grant(app, admin, user.userId, credited);
      return { ...user, granted: Math.round(credited * 100) };
    },
  );
}

export type Buyer = Awaited<ReturnType<typeof newBuyers>>[number];

export const reserve = (app: TestApp, user: TestUser, seatIds: string[]) =>
  app.request('POST', '/api/reserve', { token: user.token, body: { seat_ids: seatIds } });

export const reserveOne = (app: TestApp, user: TestUser, seatId: string) =>
  app.request('POST', '/api/reserve', { token: user.token, body: { seat_id: seatId } });

export const pay = (app: TestApp, user: TestUser, orderId: string, key?: string) =>
  app.request('POST', '/api/pay', {
    token: user.token,
    body: { order_id: orderId },
    ...(key ? { headers: { 'idempotency-key': key } } : {}),
  });

/** `200`, or the status and error code of a refusal: `409 SEAT_UNAVAILABLE`. */
export const outcome = (res: Response) =>
  res.status < 300 ? String(res.status) : `${res.status} ${res.body?.error_code}`;

/** How many answers had each outcome. */
export function tally(answers: Response[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) out[outcome(a)] = (out[outcome(a)] ?? 0) + 1;
  return out;
}

/** Credits as the API shows them, to integer cents. */
export const cents = (credits: number) => Math.round(credits * 100);

/**
 * The background work the invariants wait for: saga recovery, then the order and seat sweepers.
 * Answers the clock's time before the sweeps: what had ended by then must be swept.
 */
export async function settle(app: TestApp): Promise<number> {
  const sweptAt = app.kernel.clock.now();
  await app.kernel.jobs.run('orchestrator', 'saga-recovery');
  await app.kernel.jobs.run('order', 'order-sweeper');
  await app.kernel.jobs.run('event', 'hold-sweeper');
  return sweptAt;
}

export interface SaleSeat {
  id: string;
  event_id: string;
  price: number;
  status: string;
  owner_user_id: string | null;
  held_by_user_id: string | null;
  hold_order_id: string | null;
  held_until: number | null;
  sold_order_id: string | null;
  price_paid: number | null;
}

export interface SaleOrder {
  id: string;
  user_id: string;
  event_id: string;
  status: string;
  total: number;
  expires_at: number;
  seats: { seat_id: string; price: number }[];
}

export interface SaleUser {
  id: string;
  balance: number;
  frozen: number;
  ledger: number;
  entries: number;
  granted: number;
}

/** Everything the invariants speak of, read straight from the user, event and order databases. */
export async function saleState(app: TestApp, sweptAt = app.kernel.clock.now()) {
  const userDb = app.kernel.databases.get('user')!;
  const eventDb = app.kernel.databases.get('event')!;
  const orderDb = app.kernel.databases.get('order')!;
  const n = (v: unknown) => (v === null || v === undefined ? 0 : Number(v));
  const ms = (db: typeof eventDb, v: unknown) => (v === null || v === undefined ? null : db.date(v).getTime());

  const users = new Map<string, SaleUser>();
  const userRows = await userDb.all<{ id: string; credit_balance: unknown; frozen_credits: unknown }>(
    `select id, credit_balance, frozen_credits from ${userDb.table('users')}`,
  );
  for (const u of userRows) {
    users.set(u.id, {
      id: u.id,
      balance: n(u.credit_balance),
      frozen: n(u.frozen_credits),
      ledger: 0,
      entries: 0,
      granted: 0,
    });
  }
  const sums = await userDb.all<{ user_id: string; total: unknown; entries: unknown; granted: unknown }>(
    `select user_id, sum(amount) as total, count(*) as entries,
            sum(case when type = 'GRANT' then amount else 0 end) as granted
     from ${userDb.table('credit_transactions')} group by user_id`,
  );
  const strays: string[] = [];
  for (const s of sums) {
    const u = users.get(s.user_id);
    if (!u) {
      strays.push(`ledger entries of unknown user ${s.user_id}`);
      continue;
    }
    Object.assign(u, { ledger: n(s.total), entries: n(s.entries), granted: n(s.granted) });
  }

  const seatRows = await eventDb.all<Record<string, unknown>>(
    `select id, event_id, price, status, owner_user_id, held_by_user_id, hold_order_id, held_until, sold_order_id, price_paid
     from ${eventDb.table('seats')}`,
  );
  const seats = seatRows.map(
    (s) =>
      ({
        ...s,
        price: n(s.price),
        held_until: ms(eventDb, s.held_until),
        price_paid: s.price_paid === null ? null : n(s.price_paid),
      }) as SaleSeat,
  );

  const orders = new Map<string, SaleOrder>();
  const orderRows = await orderDb.all<Record<string, unknown>>(
    `select id, user_id, event_id, status, total, expires_at from ${orderDb.table('orders')}`,
  );
  for (const o of orderRows) {
    orders.set(o.id as string, {
      ...(o as unknown as SaleOrder),
      total: n(o.total),
      expires_at: ms(orderDb, o.expires_at)!,
      seats: [],
    });
  }
  const lines = await orderDb.all<{ order_id: string; seat_id: string; price: unknown }>(
    `select order_id, seat_id, price from ${orderDb.table('order_seats')} order by order_id, position`,
  );
  for (const l of lines) {
    const o = orders.get(l.order_id);
    if (o) o.seats.push({ seat_id: l.seat_id, price: n(l.price) });
    else strays.push(`order_seats row of unknown order ${l.order_id}`);
  }
  return { users, seats, orders, strays, sweptAt };
}

export type SaleState = Awaited<ReturnType<typeof saleState>>;

/**
 * The product's invariants as they stand once the storm is over and `settle` has run, as a
 * list of violations (empty when all hold), so that a failure names every broken row at once:
 * - every balance is its ledger's sum, none below zero;
 * - every SOLD or CHECKED_IN seat has exactly one CONFIRMED order containing it, which is its
 *   sold_order_id and whose user owns it; every CONFIRMED order owns all its seats;
 * - every HELD seat is held for a live order containing it, for that order's user; no order
 *   holds only some of its seats, and no order that is not PENDING holds any past its expiry;
 * - nothing that had ended when the sweepers ran is left: no seat HELD past its held_until, no
 *   order PENDING past its expiry;
 * - credits granted = balances + what the CONFIRMED orders charged.
 */
export function violations(state: SaleState, opts: { granted?: number } = {}): string[] {
  const out = [...state.strays];
  const { users, seats, orders, sweptAt } = state;

  for (const u of users.values()) {
    if (u.balance + u.frozen !== u.ledger) {
      out.push(`user ${u.id}: balance ${u.balance} + frozen ${u.frozen} != ledger sum ${u.ledger}`);
    }
    if (u.balance < 0 || u.frozen < 0) out.push(`user ${u.id}: below zero (${u.balance}, ${u.frozen})`);
  }

  const confirmedBySeat = new Map<string, SaleOrder[]>();
  for (const o of orders.values()) {
    const sum = o.seats.reduce((a, s) => a + s.price, 0);
    if (sum !== o.total) out.push(`order ${o.id}: total ${o.total} != its seats' prices ${sum}`);
    if (o.seats.length === 0) out.push(`order ${o.id}: no seats`);
    if (o.status !== 'CONFIRMED') continue;
    for (const s of o.seats) confirmedBySeat.set(s.seat_id, [...(confirmedBySeat.get(s.seat_id) ?? []), o]);
  }

  const seatById = new Map(seats.map((s) => [s.id, s]));
  const heldFor = new Map<string, number>();
  for (const s of seats) {
    const confirmed = confirmedBySeat.get(s.id) ?? [];
    if (s.status === 'SOLD' || s.status === 'CHECKED_IN') {
      if (confirmed.length !== 1) {
        out.push(`seat ${s.id} ${s.status}: ${confirmed.length} CONFIRMED orders contain it`);
        continue;
      }
      const [o] = confirmed;
      if (s.sold_order_id !== o.id) out.push(`seat ${s.id}: sold_order_id ${s.sold_order_id}, CONFIRMED order ${o.id}`);
      if (s.owner_user_id !== o.user_id) out.push(`seat ${s.id}: owner ${s.owner_user_id}, buyer ${o.user_id}`);
      const line = o.seats.find((l) => l.seat_id === s.id)!;
      if (s.price_paid !== line.price) out.push(`seat ${s.id}: price_paid ${s.price_paid}, order price ${line.price}`);
    } else if (confirmed.length) {
      out.push(`seat ${s.id} ${s.status}: yet CONFIRMED order ${confirmed.map((o) => o.id)} contains it`);
    }
    if (s.status !== 'HELD') continue;
    if (s.held_until === null || s.held_until <= sweptAt) {
      out.push(`seat ${s.id}: HELD past its held_until ${s.held_until}, yet swept at ${sweptAt}`);
    }
    const o = s.hold_order_id ? orders.get(s.hold_order_id) : undefined;
    if (!o) {
      out.push(`seat ${s.id}: HELD for order ${s.hold_order_id}, which does not exist`);
      continue;
    }
    if (!o.seats.some((l) => l.seat_id === s.id))
      out.push(`seat ${s.id}: HELD for order ${o.id}, not one of its seats`);
    if (s.held_by_user_id !== o.user_id) out.push(`seat ${s.id}: HELD by ${s.held_by_user_id}, order of ${o.user_id}`);
    heldFor.set(o.id, (heldFor.get(o.id) ?? 0) + 1);
  }

  for (const o of orders.values()) {
    const held = heldFor.get(o.id) ?? 0;
    if (o.status === 'PENDING' && o.expires_at <= sweptAt)
      out.push(`order ${o.id}: PENDING past its expiry after the sweep`);
    if (held && o.status !== 'PENDING') {
      // An EXPIRED order's hold ends with it (give or take the moment both were computed); no other order holds.
      const lasting = seats.some(
        (s) => s.hold_order_id === o.id && s.status === 'HELD' && s.held_until! > o.expires_at + 1000,
      );
      if (o.status !== 'EXPIRED' || lasting) out.push(`order ${o.id} ${o.status}: still holds ${held} seats`);
    }
    if (held && held !== o.seats.length) out.push(`order ${o.id}: holds ${held} of its ${o.seats.length} seats`);
    if (o.status === 'CONFIRMED' && o.seats.some((l) => seatById.get(l.seat_id)?.sold_order_id !== o.id)) {
      out.push(`order ${o.id} CONFIRMED: does not own all its seats`);
    }
  }

  const granted = opts.granted ?? [...users.values()].reduce((a, u) => a + u.granted, 0);
  const balances = [...users.values()].reduce((a, u) => a + u.balance + u.frozen, 0);
  const charged = [...orders.values()].filter((o) => o.status === 'CONFIRMED').reduce((a, o) => a + o.total, 0);
  if (granted !== balances + charged) {
    out.push(`credits: granted ${granted} != balances ${balances} + charged ${charged}`);
  }
  return out;
}

/** Lets the background work finish, then asserts every invariant; answers the state it read. */
export async function checkInvariants(t: ExecutionContext, app: TestApp, opts: { granted?: number } = {}) {
  const state = await saleState(app, await settle(app));
  const broken = violations(state, opts);
  t.deepEqual(broken.slice(0, 20), [], `${broken.length} invariant violations`);
  const orchestrator = app.kernel.databases.get('orchestrator')!;
  const running = await orchestrator.all(`select id, kind, step from ${orchestrator.table('sagas')} where status = ?`, [
    'RUNNING',
  ]);
  t.deepEqual(running, [], 'no saga is RUNNING after recovery');
  return state;
}

/** A user's ledger entry types, sorted, to show what was charged and refunded. */
export async function ledgerTypes(app: TestApp, userId: string): Promise<string[]> {
  const db = app.kernel.databases.get('user')!;
  const rows = await db.all<{ type: string }>(`select type from ${db.table('credit_transactions')} where user_id = ?`, [
    userId,
  ]);
  return rows.map((r) => r.type).sort();
}

/** Orders of a user as stored, with their status. */
export async function ordersOf(app: TestApp, userId: string) {
  const db = app.kernel.databases.get('order')!;
  return db.all<{ id: string; status: string }>(`select id, status from ${db.table('orders')} where user_id = ?`, [
    userId,
  ]);
}
