import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { type Response, TARGETS } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import { createEvent, eventSql, seatRow } from '../helpers/events.js';
import { ledgerSum } from '../helpers/ledger.js';
import { cents, orderStates, pay, reserve, seatStates } from '../helpers/purchase.js';
import {
  accountsOf,
  type Buyer,
  checkSale,
  ledgerTypes,
  newBuyers,
  ordersOf,
  outcome,
  tally,
} from '../helpers/sale.js';
import { sharedAppWithAdmin } from '../helpers/users.js';

/**
 * Reserve and pay under real concurrent HTTP requests on the in-process app. Every storm must
 * end in a state that some serial order of the same requests could have produced, and after
 * each one the product's invariants are read from the databases. The tests are serial: one
 * storm at a time (client and server share this process), and the last one moves the clock.
 */

const HOLD_TTL_SECONDS = 30;
/** The clock step between two reserves of the expiry race, and between two ticks during its pays. */
const STEP_MS = 500;

const shuffled = <T>(xs: T[]) => {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
};

/** Sixteen overlapping triples of an eight-seat row: the eight windows [i, i+1, i+2] mod 8, and eight random ones. */
const triples = () => [
  ...Array.from({ length: 8 }, (_, i) => [i, (i + 1) % 8, (i + 2) % 8]),
  ...Array.from({ length: 8 }, () => shuffled([0, 1, 2, 3, 4, 5, 6, 7]).slice(0, 3)),
];

/** The seat indexes a refusal names in its details (`seat_ids[i]`). */
const namedSeats = (res: Response) =>
  (res.body?.details ?? []).map((d: { field: string }) => /^seat_ids\[(\d+)\]$/.exec(d.field)?.[1] ?? d.field);

for (const kind of TARGETS) {
  const clock = manualClock();
  const { app, admin } = sharedAppWithAdmin(
    kind,
    { HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS), SWEEP_INTERVAL_MS: '200' },
    clock,
  );
  const name = (s: string) => `[${kind}] ${s}`;

  /** Cents granted in this app, the figure the money invariant is checked against. */
  let granted = 0;
  const buyers = async (n: number, credits = 0) => {
    const list = await newBuyers(app, admin, n, credits);
    granted += list.reduce((a, b) => a + b.granted, 0);
    return list;
  };
  /** An event of `rows` rows of `seats` seats, CAT1 (149.50) and CAT2 (80) in turn. */
  const rowEvent = (seats: number, rows = 1) =>
    createEvent(app, admin, {
      rows: Array.from({ length: rows }, (_, i) => ({
        row_number: String.fromCharCode(65 + i),
        seats,
        category: i % 2 ? 'CAT2' : 'CAT1',
      })),
    });
  const heldSeats = (eventId: string) =>
    eventSql<{ id: string; hold_order_id: string; held_by_user_id: string }>(
      app,
      (tb) => `select id, hold_order_id, held_by_user_id from ${tb('seats')} where event_id = ? and status = 'HELD'`,
      [eventId],
    );

  /** The order is CONFIRMED, its seats SOLD to its buyer, and the buyer was charged its total exactly once. */
  async function paidOnce(
    t: ExecutionContext,
    u: Buyer,
    order: { order_id: string; seat_ids: string[]; price: number },
  ) {
    const total = cents(order.price);
    t.deepEqual(await ledgerTypes(app, u.userId), ['GRANT', 'PURCHASE'], 'one charge and no refund');
    t.deepEqual(await ledgerSum(app, u.userId), {
      sum: u.granted - total,
      rows: 2,
      balance: u.granted - total,
      frozen: 0,
    });
    const seen = await app.request('GET', `/api/orders/${order.order_id}`, { token: u.token });
    t.like(seen.body.data, { status: 'CONFIRMED', credits_charged: order.price, seat_ids: order.seat_ids });
    for (const seatId of order.seat_ids) {
      t.like(await seatRow(app, seatId), { status: 'SOLD', owner_user_id: u.userId, sold_order_id: order.order_id });
    }
  }

  test.serial(name('100 users reserve one seat at once: one holds it, 99 get 409 SEAT_UNAVAILABLE'), async (t) => {
    const e = await rowEvent(1);
    const seatId = e.seats[0].seat_id;
    const users = await buyers(100);
    const answers = await Promise.all(users.map((u) => reserve(app, u, seatId)));
    t.deepEqual(tally(answers), { 200: 1, '409 SEAT_UNAVAILABLE': 99 });
    const w = answers.findIndex((a) => a.status === 200);
    if (w < 0) return;
    const won = answers[w].body.data;
    t.like(won, { seat_id: seatId, seat_ids: [seatId], event_id: e.eventId, status: 'HELD', price: e.seats[0].price });
    t.like(await seatRow(app, seatId), {
      status: 'HELD',
      hold_order_id: won.order_id,
      held_by_user_id: users[w].userId,
      held_until: Date.parse(won.held_until),
    });
    t.deepEqual(await ordersOf(app, users[w].userId), [{ id: won.order_id, status: 'PENDING' }]);
    for (const [i, a] of answers.entries()) if (i !== w) isError(t, a, 409, 'SEAT_UNAVAILABLE');
    const losers = await Promise.all(users.filter((_, i) => i !== w).map((u) => ordersOf(app, u.userId)));
    t.deepEqual(
      losers.flat().filter((o) => o.status === 'PENDING' || o.status === 'CONFIRMED'),
      [],
      'no loser has a live order',
    );
    await checkSale(t, app, { granted });
  });

  test.serial(
    name('16 users reserve overlapping triples of an eight-seat row at once: the winners hold disjoint whole sets'),
    async (t) => {
      const users = await buyers(16);
      // Three rounds on fresh rows: each user holds at most 9 seats, under the hold limit.
      for (let round = 0; round < 3; round++) {
        const e = await rowEvent(8);
        const sets = triples().map((ix) => ix.map((i) => e.seats[i].seat_id));
        const answers = await Promise.all(sets.map((seats, i) => reserve(app, users[i], seats)));
        const odd = answers.filter((a) => !['200', '409 SEAT_UNAVAILABLE'].includes(outcome(a)));
        t.deepEqual(odd.map(outcome), [], JSON.stringify(odd[0]?.body));

        const winners = answers.flatMap((a, i) => (a.status === 200 ? [i] : []));
        t.true(winners.length >= 1, 'someone wins');
        const holder = new Map<string, number>();
        for (const i of winners) {
          const d = answers[i].body.data;
          const price = sets[i].reduce((a, s) => a + cents(e.seats.find((x) => x.seat_id === s)!.price), 0);
          t.like(d, { seat_id: sets[i][0], seat_ids: sets[i], event_id: e.eventId, status: 'HELD' });
          t.is(cents(d.price), price);
          for (const s of sets[i]) {
            t.false(holder.has(s), `seat ${s} won by two orders`);
            holder.set(s, i);
          }
        }
        const held = await heldSeats(e.eventId);
        t.deepEqual(
          held.map((r) => r.id).sort(),
          [...holder.keys()].sort(),
          "HELD seats = the union of the winners' seats",
        );
        for (const r of held) {
          const i = holder.get(r.id)!;
          t.deepEqual([r.hold_order_id, r.held_by_user_id], [answers[i].body?.data?.order_id, users[i].userId]);
        }
        for (const [i, a] of answers.entries()) {
          if (a.status === 200) continue;
          isError(t, a, 409, 'SEAT_UNAVAILABLE');
          const named = namedSeats(a);
          t.true(named.length > 0, `the refusal names its refused seats: ${JSON.stringify(a.body)}`);
          // A serial run refuses a triple only for a seat that a winner holds.
          for (const ix of named) t.true(holder.has(sets[i][Number(ix)]), `seat_ids[${ix}] is a winner's seat`);
        }
      }
      await checkSale(t, app, { granted });
    },
  );

  test.serial(
    name('one user, 24 single-seat reserves at once: exactly 10 hold, 14 get 409 HOLD_LIMIT_REACHED'),
    async (t) => {
      const [u] = await buyers(1);
      const e = await rowEvent(24);
      const ids = e.seats.map((s) => s.seat_id);
      const answers = await Promise.all(ids.map((s) => reserve(app, u, s)));
      t.deepEqual(tally(answers), { 200: 10, '409 HOLD_LIMIT_REACHED': 14 });
      const won = answers.flatMap((a, i) => (a.status === 200 ? [{ seat: ids[i], order: a.body.data.order_id }] : []));
      const held = await heldSeats(e.eventId);
      t.deepEqual(
        held.map((r) => [r.id, r.hold_order_id, r.held_by_user_id]).sort(),
        won.map((w) => [w.seat, w.order, u.userId]).sort(),
      );
      t.is(new Set(won.map((w) => w.order)).size, won.length, 'one order per seat');
      t.deepEqual(
        (await ordersOf(app, u.userId)).map((o) => [o.id, o.status]).sort(),
        won.map((w) => [w.order, 'PENDING']).sort(),
      );
      for (const a of answers) if (a.status !== 200) isError(t, a, 409, 'HOLD_LIMIT_REACHED');
      const free = ids.find((s) => !won.some((w) => w.seat === s))!;
      isError(t, await reserve(app, u, free), 409, 'HOLD_LIMIT_REACHED');
      await checkSale(t, app, { granted });
    },
  );

  test.serial(
    name('one user, 12 three-seat reserves at once: exactly 3 hold (9 seats), then one seat more fits'),
    async (t) => {
      const [u] = await buyers(1);
      const e = await rowEvent(37);
      const ids = e.seats.map((s) => s.seat_id);
      const sets = Array.from({ length: 12 }, (_, i) => ids.slice(3 * i, 3 * i + 3));
      const answers = await Promise.all(sets.map((s) => reserve(app, u, s)));
      t.deepEqual(tally(answers), { 200: 3, '409 HOLD_LIMIT_REACHED': 9 });
      const won = answers.flatMap((a, i) => (a.status === 200 ? sets[i].map((s) => [s, a.body.data.order_id]) : []));
      const held = await heldSeats(e.eventId);
      t.deepEqual(held.map((r) => [r.id, r.hold_order_id]).sort(), won.sort(), 'each winner holds its three seats');
      for (const a of answers) if (a.status !== 200) isError(t, a, 409, 'HOLD_LIMIT_REACHED');
      // 9 held: a tenth seat is within the limit, an eleventh is not.
      const tenth = await reserve(app, u, ids[36]);
      t.is(tenth.status, 200, JSON.stringify(tenth.body));
      const loser = sets[answers.findIndex((a) => a.status !== 200)];
      isError(t, await reserve(app, u, loser[0]), 409, 'HOLD_LIMIT_REACHED');
      await checkSale(t, app, { granted });
    },
  );

  /** Ten buyers, each with a reserved order of two seats of one row. */
  async function twoSeatOrders(t: ExecutionContext) {
    const users = await buyers(10, 500);
    const e = await rowEvent(20);
    const orders = await Promise.all(
      users.map((u, i) => reserve(app, u, [e.seats[2 * i].seat_id, e.seats[2 * i + 1].seat_id])),
    );
    t.deepEqual(tally(orders), { 200: 10 });
    return { users, orders };
  }

  test.serial(
    name('two pays of one order at once, no key: charged once, one 200 and one 409 ORDER_ALREADY_CONFIRMED'),
    async (t) => {
      const { users, orders } = await twoSeatOrders(t);
      const pairs = await Promise.all(
        orders.map((o, i) => Promise.all([0, 1].map(() => pay(app, users[i], o.body.data.order_id)))),
      );
      for (const [i, pair] of pairs.entries()) {
        const order = orders[i].body.data;
        t.deepEqual(
          pair.map(outcome).sort(),
          ['200', '409 ORDER_ALREADY_CONFIRMED'],
          JSON.stringify(pair.map((p) => p.body)),
        );
        const ok = pair.find((p) => p.status === 200);
        t.like(ok?.body.data, {
          order_id: order.order_id,
          seat_ids: order.seat_ids,
          status: 'CONFIRMED',
          credits_charged: order.price,
        });
        t.is(cents(ok?.body.data.remaining_balance), users[i].granted - cents(order.price));
        const other = pair.find((p) => p.status !== 200);
        if (other) isError(t, other, 409, 'ORDER_ALREADY_CONFIRMED');
        await paidOnce(t, users[i], order);
      }
      await checkSale(t, app, { granted });
    },
  );

  test.serial(
    name('two pays of one order at once with the same key: charged once, the same 200 or a 409'),
    async (t) => {
      const { users, orders } = await twoSeatOrders(t);
      const keys = users.map(() => `pay-${randomUUID()}`);
      const pairs = await Promise.all(
        orders.map((o, i) => Promise.all([0, 1].map(() => pay(app, users[i], o.body.data.order_id, keys[i])))),
      );
      for (const [i, pair] of pairs.entries()) {
        const order = orders[i].body.data;
        const shown = JSON.stringify(pair.map((p) => p.body));
        t.true(
          pair.every((p) => ['200', '409 ORDER_ALREADY_CONFIRMED'].includes(outcome(p))),
          shown,
        );
        const oks = pair.filter((p) => p.status === 200);
        t.true(oks.length >= 1, shown);
        // The second finds the key's saga (or loses the claim to it) and replays its answer.
        t.is(oks.length, 2, `with one key both pays answer the first 200: ${shown}`);
        if (!oks.length) continue;
        for (const ok of oks) t.deepEqual(ok.body, oks[0].body, 'both 200s are the one answer');
        t.like(oks[0].body.data, { order_id: order.order_id, status: 'CONFIRMED', credits_charged: order.price });
        for (const p of pair) if (p.status !== 200) isError(t, p, 409, 'ORDER_ALREADY_CONFIRMED');
        const again = await pay(app, users[i], order.order_id, keys[i]);
        t.is(again.status, 200);
        t.deepEqual(again.body, oks[0].body, 'the key answers its first answer');
        await paidOnce(t, users[i], order);
      }
      await checkSale(t, app, { granted });
    },
  );

  test.serial(
    name("pays racing their holds' expiry: each order is CONFIRMED and charged, or refused and not charged"),
    async (t) => {
      const N = 48;
      const users = await buyers(N, 400);
      const e = await rowEvent(24, 4);
      // One two-seat order per user, reserved STEP_MS of clock apart: their holds end one after another.
      const orders: { order_id: string; seat_ids: string[]; price: number; held_until: string }[] = [];
      for (const [i, u] of users.entries()) {
        const res = await reserve(app, u, [e.seats[2 * i].seat_id, e.seats[2 * i + 1].seat_id]);
        t.is(res.status, 200, JSON.stringify(res.body));
        orders.push(res.body.data);
        clock.advance(STEP_MS);
      }
      const until = orders.map((o) => Date.parse(o.held_until));
      // A quarter of the holds have ended when the pays are sent; the clock keeps moving while they run,
      // through half of the holds, with the sweepers running every 200 ms; the last quarter stay live.
      clock.advance(until[N / 4 - 1] + 1 - clock.now());
      const sent = clock.now();
      const ticking = (async () => {
        for (let k = 0; k < N / 2; k++) {
          await sleep(5);
          clock.advance(STEP_MS);
        }
      })();
      const answers = await Promise.all(orders.map((o, i) => pay(app, users[i], o.order_id)));
      await ticking;
      const ended = clock.now();

      await checkSale(t, app, { granted });
      const seats = new Map((await seatStates(app)).map((s) => [s.id, s]));
      const stored = new Map((await orderStates(app)).map((o) => [o.id, o]));
      const accounts = await accountsOf(app);
      const seen: Record<string, Record<string, number>> = { ended: {}, racing: {}, live: {} };
      const allowed: Record<string, string[]> = {
        ended: ['410 HOLD_EXPIRED'],
        live: ['200'],
        racing: ['200', '410 HOLD_EXPIRED'],
      };
      for (const [i, o] of orders.entries()) {
        const a = answers[i];
        const u = users[i];
        const total = cents(o.price);
        const group = until[i] <= sent ? 'ended' : until[i] > ended ? 'live' : 'racing';
        t.true(allowed[group].includes(outcome(a)), `order ${i} (${group}): ${outcome(a)} ${JSON.stringify(a.body)}`);
        const order = stored.get(o.order_id);
        const seenAs = `${outcome(a)}, order ${order?.status}`;
        seen[group][seenAs] = (seen[group][seenAs] ?? 0) + 1;
        const user = accounts.get(u.userId);
        const rows = o.seat_ids.map((s) => seats.get(s));
        if (a.status === 200) {
          t.like(a.body.data, { order_id: o.order_id, status: 'CONFIRMED', credits_charged: o.price });
          t.is(order?.status, 'CONFIRMED');
          t.deepEqual(
            rows.map((s) => [s?.status, s?.sold_order_id, s?.owner_user_id]),
            rows.map(() => ['SOLD', o.order_id, u.userId]),
            'paid: every seat sold to the buyer',
          );
          t.deepEqual([user?.balance, user?.ledger], [u.granted - total, u.granted - total], 'paid: charged once');
        } else {
          if (a.status < 500) isError(t, a, a.status, a.body.error_code);
          t.not(order?.status, 'CONFIRMED');
          t.deepEqual(
            rows.map((s) => s?.status),
            rows.map(() => 'AVAILABLE'),
            'refused: the seats are free again',
          );
          t.deepEqual([user?.balance, user?.ledger], [u.granted, u.granted], 'refused: not charged, net of refunds');
        }
      }
      t.true(Object.keys(seen.ended).length > 0, 'some holds had ended before their pay');
      t.log(`${kind}: ${JSON.stringify(seen)}`);
    },
  );
}
