import { randomUUID } from 'node:crypto';
import test from 'ava';
import { AppError } from '../../src/kernel/errors.js';
import type { OrderHoldDto } from '../../src/modules/event/index.js';
import { TARGETS } from '../helpers/app.js';
import { ADAPTERS, createEvent, eventSql, HOLD_LIMIT, holdOne, scansOf, seatRow, sellSeat } from '../helpers/events.js';
import { sharedAppWithAdmin } from '../helpers/users.js';

/**
 * The seat state machine under real concurrency, through both adapters of the port: every
 * write is one conditional UPDATE (an order's, in one transaction), so a storm of requests ends
 * in a state that a serial run could have produced. The hold storms are serial: one storm at a time (client and server
 * share this process), so that a busy machine slows them down without timing them out.
 */

const codeOf = (r: PromiseSettledResult<unknown>) =>
  r.status === 'rejected' ? (r.reason instanceof AppError ? r.reason.code : String(r.reason)) : 'OK';

const tally = (results: PromiseSettledResult<unknown>[]) => {
  const out: Record<string, number> = {};
  for (const r of results) out[codeOf(r)] = (out[codeOf(r)] ?? 0) + 1;
  return out;
};

/** The first refusal other than the expected one, to explain a failed tally. */
const oddOne = (results: PromiseSettledResult<unknown>[]) => {
  const odd = results.find((r) => !['OK', 'SEAT_UNAVAILABLE'].includes(codeOf(r))) as PromiseRejectedResult | undefined;
  return odd ? `${odd.reason?.name}: ${odd.reason?.message}` : 'none';
};

for (const kind of TARGETS) {
  const { app, admin } = sharedAppWithAdmin(kind, { SWEEP_INTERVAL_MS: '3600000' });

  for (const [adapter, make] of Object.entries(ADAPTERS)) {
    const name = (s: string) => `[${kind}/${adapter}] ${s}`;

    test.serial(name('200 concurrent holds of one seat by 200 users: exactly one wins'), async (t) => {
      const port = make(app);
      const e = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 1, category: 'CAT1' }] });
      const seatId = e.seats[0].seat_id;
      const attempts = Array.from({ length: 200 }, () => ({ userId: randomUUID(), orderId: randomUUID() }));
      const results = await Promise.allSettled(attempts.map((a) => holdOne(port, seatId, a)));
      t.deepEqual(tally(results), { OK: 1, SEAT_UNAVAILABLE: 199 }, oddOne(results));
      const won = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<OrderHoldDto>).value;
      t.like(await seatRow(app, seatId), {
        status: 'HELD',
        held_by_user_id: won.userId,
        hold_order_id: won.orderId,
        held_until: Date.parse(won.heldUntil),
      });
      t.true(attempts.some((a) => a.userId === won.userId && a.orderId === won.orderId));
    });

    test.serial(name('1,000 concurrent holds by 300 users on 100 seats: no seat is held twice'), async (t) => {
      const port = make(app);
      const e = await createEvent(app, admin, {
        rows: Array.from({ length: 10 }, (_, i) => ({ row_number: `R${i}`, seats: 10, category: 'CAT1' })),
      });
      const seats = e.seats.map((s) => s.seat_id);
      const users = Array.from({ length: 300 }, () => randomUUID());
      const pick = <T>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];
      const attempts = Array.from({ length: 1000 }, () => ({
        seatId: pick(seats),
        userId: pick(users),
        orderId: randomUUID(),
      }));
      // A user's share of the 100 seats is not what this is about: no hold limit gets in the way.
      const results = await Promise.allSettled(
        attempts.map(({ seatId, ...a }) => holdOne(port, seatId, { ...a, holdLimit: 1000 })),
      );
      const counts = tally(results);
      t.deepEqual(
        Object.keys(counts).sort(),
        counts.SEAT_UNAVAILABLE ? ['OK', 'SEAT_UNAVAILABLE'] : ['OK'],
        oddOne(results),
      );
      // A user's second attempt on a seat it holds is a repeated reserve: it answers the first hold.
      const answers = results.flatMap((r, i) =>
        r.status === 'fulfilled' ? [{ asked: attempts[i], hold: r.value }] : [],
      );
      for (const { asked, hold } of answers) {
        t.deepEqual([hold.userId, hold.seats.map((s) => s.seatId)], [asked.userId, [asked.seatId]]);
      }
      const holds = new Map(answers.map(({ asked, hold }) => [hold.orderId, { ...hold, seatId: asked.seatId }]));
      const wins = [...holds.values()];
      t.true(
        wins.every((w) => attempts.some((a) => a.orderId === w.orderId && a.userId === w.userId)),
        'every hold is one attempt’s own order',
      );
      const wonSeats = new Set(wins.map((w) => w.seatId));
      t.is(wonSeats.size, wins.length, 'no seat was held twice');
      // Each attempted seat was won by exactly one attempt.
      t.is(wins.length, new Set(attempts.map((a) => a.seatId)).size);

      const held = await eventSql<{ id: string; held_by_user_id: string; hold_order_id: string }>(
        app,
        (tb) => `select id, held_by_user_id, hold_order_id from ${tb('seats')} where event_id = ? and status = 'HELD'`,
        [e.eventId],
      );
      t.is(held.length, wins.length, 'holds taken = seats held');
      const byseat = new Map(wins.map((w) => [w.seatId, w]));
      for (const row of held) {
        const w = byseat.get(row.id);
        t.truthy(w, `held seat ${row.id} has a winner`);
        t.deepEqual([row.held_by_user_id, row.hold_order_id], [w?.userId, w?.orderId]);
      }
      const detail = await app.request('GET', `/api/events/${e.eventId}`);
      t.is(detail.body.data.available_seats, 100 - wins.length);
    });

    test.serial(
      name('16 orders of overlapping 3-seat sets of an 8-seat row at once: whole, disjoint holds'),
      async (t) => {
        const port = make(app);
        const e = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 8, category: 'CAT1' }] });
        const row = e.seats.map((s) => s.seat_id);
        // Sets starting at A1…A6, each named in a shuffled order, so that no two orders lock alike by chance.
        const orders = Array.from({ length: 16 }, (_, i) => {
          const start = i % 6;
          const seatIds = row.slice(start, start + 3).sort(() => Math.random() - 0.5);
          return { seatIds, userId: randomUUID(), orderId: randomUUID(), ttlSeconds: 300, holdLimit: HOLD_LIMIT };
        });
        const results = await Promise.allSettled(orders.map((o) => port.holdSeats(o)));
        const counts = tally(results);
        t.true(counts.OK >= 2, `at least two disjoint sets win: ${JSON.stringify(counts)}`);
        t.deepEqual(
          Object.keys(counts).sort(),
          counts.SEAT_UNAVAILABLE ? ['OK', 'SEAT_UNAVAILABLE'] : ['OK'],
          oddOne(results),
        );
        const wins = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ asked: orders[i], hold: r.value }] : []));
        const won = wins.flatMap((w) => w.hold.seats.map((s) => s.seatId));
        t.is(new Set(won).size, won.length, 'the winners’ seats are disjoint');
        for (const { asked, hold } of wins) {
          t.like(hold, { orderId: asked.orderId, userId: asked.userId, total: 3 * 14950 });
          t.deepEqual(
            hold.seats.map((s) => s.seatId),
            asked.seatIds,
            'every winner holds all its seats',
          );
        }
        const held = await eventSql<{ id: string; held_by_user_id: string; hold_order_id: string }>(
          app,
          (tb) =>
            `select id, held_by_user_id, hold_order_id from ${tb('seats')} where event_id = ? and status = 'HELD'`,
          [e.eventId],
        );
        t.deepEqual(held.map((r) => r.id).sort(), [...won].sort(), 'HELD seats are exactly the winners’ seats');
        const owner = new Map(wins.flatMap((w) => w.hold.seats.map((s) => [s.seatId, w.asked] as const)));
        for (const r of held) {
          t.deepEqual([r.held_by_user_id, r.hold_order_id], [owner.get(r.id)?.userId, owner.get(r.id)?.orderId]);
        }
      },
    );

    test.serial(name('24 single-seat holds by one user at once, hold limit 10: exactly 10 are held'), async (t) => {
      const port = make(app);
      const e = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 24, category: 'CAT1' }] });
      const user = randomUUID();
      const results = await Promise.allSettled(
        e.seats.map((s) => holdOne(port, s.seat_id, { userId: user, holdLimit: 10 })),
      );
      t.deepEqual(tally(results), { OK: 10, HOLD_LIMIT_REACHED: 14 });
      const held = await eventSql<{ id: string; held_by_user_id: string }>(
        app,
        (tb) => `select id, held_by_user_id from ${tb('seats')} where event_id = ? and status = 'HELD'`,
        [e.eventId],
      );
      t.is(held.length, 10);
      t.true(held.every((r) => r.held_by_user_id === user));
      const won = results.flatMap((r) => (r.status === 'fulfilled' ? r.value.seats.map((s) => s.seatId) : []));
      t.deepEqual(held.map((r) => r.id).sort(), won.sort());
    });

    test(name('10 concurrent check-ins of one sold seat: one SUCCESS, nine DUPLICATE, ten scan rows'), async (t) => {
      const port = make(app);
      const e = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 2, category: 'CAT1' }] });
      const seatId = e.seats[0].seat_id;
      const { userId } = await sellSeat(port, seatId);
      const gates = Array.from({ length: 10 }, () => randomUUID());
      const verdicts = await Promise.all(
        gates.map((staffId) => port.checkIn({ seatId, expectedOwnerId: userId, staffId, presentedHall: 'HALL-A' })),
      );
      const results = verdicts.map((v) => v.result).sort();
      t.deepEqual(results, [...Array(9).fill('DUPLICATE'), 'SUCCESS']);
      const success = verdicts.find((v) => v.result === 'SUCCESS')!;
      t.true(
        verdicts.every((v) => v.checkedInAt === success.checkedInAt),
        'every DUPLICATE names the one check-in',
      );
      const rows = await scansOf(app, seatId);
      t.is(rows.length, 10);
      t.deepEqual(rows.map((r) => r.staff_user_id).sort(), [...gates].sort());
      t.deepEqual(rows.map((r) => r.result).sort(), results);
      t.like(await seatRow(app, seatId), { status: 'CHECKED_IN', owner_user_id: userId });
    });

    test(
      name('a hold, its confirm, its release and a rival hold racing: the seat ends in one coherent state'),
      async (t) => {
        const port = make(app);
        const e = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 20, category: 'CAT1' }] });
        await Promise.all(
          e.seats.map(async ({ seat_id: seatId }) => {
            const h = await holdOne(port, seatId);
            const rival = { userId: randomUUID(), orderId: randomUUID() };
            const [confirm, release, rivalHold] = await Promise.allSettled([
              port.confirmOrder({ orderId: h.orderId, userId: h.userId, seats: [{ seatId, pricePaid: 14950 }] }),
              port.releaseOrder({ orderId: h.orderId }),
              holdOne(port, seatId, rival),
            ]);
            const row = await seatRow(app, seatId);
            if (confirm.status === 'fulfilled') {
              // Sold first: the release found nothing to release and the rival lost (before or after the sale).
              t.like(row, { status: 'SOLD', owner_user_id: h.userId, sold_order_id: h.orderId });
              t.deepEqual(release, { status: 'fulfilled', value: { released: 0 } });
              t.true(['SEAT_UNAVAILABLE', 'SEAT_ALREADY_SOLD'].includes(codeOf(rivalHold)), codeOf(rivalHold));
            } else {
              t.is(codeOf(confirm), 'SEAT_NOT_HELD');
              t.deepEqual(release, { status: 'fulfilled', value: { released: 1 } });
              if (rivalHold.status === 'fulfilled') {
                t.like(row, { status: 'HELD', held_by_user_id: rival.userId, hold_order_id: rival.orderId });
              } else {
                t.like(row, { status: 'AVAILABLE', held_by_user_id: null, owner_user_id: null });
              }
            }
          }),
        );
      },
    );
  }
}
