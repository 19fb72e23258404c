import { randomUUID } from 'node:crypto';
import test from 'ava';
import { AppError } from '../../src/kernel/errors.js';
import type { HoldDto } from '../../src/modules/event/index.js';
import { DATABASES } from '../helpers/app.js';
import { ADAPTERS, createEvent, eventSql, scansOf, seatRow, sellSeat } from '../helpers/events.js';
import { sharedAppWithAdmin } from '../helpers/users.js';

/**
 * The seat state machine under real concurrency, through both adapters of the port: every
 * write is one conditional UPDATE, so a storm of requests ends in a state that a serial run
 * could have produced. The two hold storms are serial: one storm at a time (client and server
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

for (const kind of DATABASES) {
  const { app, admin } = sharedAppWithAdmin(kind, { SWEEP_INTERVAL_MS: '3600000' });

  for (const [adapter, make] of Object.entries(ADAPTERS)) {
    const name = (s: string) => `[${kind}/${adapter}] ${s}`;

    test.serial(name('200 concurrent holds of one seat by 200 users: exactly one wins'), async (t) => {
      const port = make(app);
      const e = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 1, category: 'CAT1' }] });
      const seatId = e.seats[0].seat_id;
      const attempts = Array.from({ length: 200 }, () => ({ userId: randomUUID(), orderId: randomUUID() }));
      const results = await Promise.allSettled(attempts.map((a) => port.holdSeat({ seatId, ...a, ttlSeconds: 300 })));
      t.deepEqual(tally(results), { OK: 1, SEAT_UNAVAILABLE: 199 }, oddOne(results));
      const won = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<HoldDto>).value;
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
      const results = await Promise.allSettled(attempts.map((a) => port.holdSeat({ ...a, ttlSeconds: 300 })));
      const counts = tally(results);
      t.deepEqual(
        Object.keys(counts).sort(),
        counts.SEAT_UNAVAILABLE ? ['OK', 'SEAT_UNAVAILABLE'] : ['OK'],
        oddOne(results),
      );
      const wins = results
        .filter((r) => r.status === 'fulfilled')
        .map((r) => (r as PromiseFulfilledResult<HoldDto>).value);
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
            const h = await port.holdSeat({ seatId, userId: randomUUID(), orderId: randomUUID(), ttlSeconds: 300 });
            const rival = { userId: randomUUID(), orderId: randomUUID() };
            const [confirm, release, rivalHold] = await Promise.allSettled([
              port.confirmSeat({ seatId, orderId: h.orderId, userId: h.userId, pricePaid: 14950 }),
              port.releaseHold({ seatId, orderId: h.orderId }),
              port.holdSeat({ seatId, ...rival, ttlSeconds: 300 }),
            ]);
            const row = await seatRow(app, seatId);
            if (confirm.status === 'fulfilled') {
              // Sold first: the release found nothing to release and the rival lost (before or after the sale).
              t.like(row, { status: 'SOLD', owner_user_id: h.userId, sold_order_id: h.orderId });
              t.deepEqual(release, { status: 'fulfilled', value: { released: false } });
              t.true(['SEAT_UNAVAILABLE', 'SEAT_ALREADY_SOLD'].includes(codeOf(rivalHold)), codeOf(rivalHold));
            } else {
              t.is(codeOf(confirm), 'SEAT_NOT_HELD');
              t.deepEqual(release, { status: 'fulfilled', value: { released: true } });
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
