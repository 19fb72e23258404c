import { randomUUID } from 'node:crypto';
import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { createIdempotency } from '../../src/kernel/idempotency.js';
import { createSeats } from '../../src/modules/event/seats.js';
import { DATABASES, sharedApp, type TestApp } from '../helpers/app.js';
import { rejects, until } from '../helpers/assert.js';
import { ADAPTERS, createEvent, holdOne, localPort, seatRow } from '../helpers/events.js';
import { metric } from '../helpers/metrics.js';
import { adminLogin } from '../helpers/users.js';

/**
 * Holds end by themselves: at once for every reader and every new hold, and in the rows when
 * the sweeper passes. Two apps per database, each on a clock the tests move instead of waiting
 * out a TTL: one whose sweeper waits an hour, so that what happens before any sweep can be seen,
 * and one whose sweeper runs by itself every 200 ms.
 */

const SWEPT = { status: 'AVAILABLE', held_by_user_id: null, hold_order_id: null, held_until: null };

for (const kind of DATABASES) {
  const quietClock = manualClock();
  const sweepingClock = manualClock();
  const quiet = sharedApp(kind, { env: { SWEEP_INTERVAL_MS: '3600000' }, clock: quietClock });
  const sweeping = sharedApp(kind, { env: { SWEEP_INTERVAL_MS: '200' }, clock: sweepingClock });

  const eventOf = async (app: TestApp, seats: number) =>
    createEvent(app, await adminLogin(app), { rows: [{ row_number: 'A', seats, category: 'CAT1' }] });
  /** A hold of one seat, with the seat's id beside the order's hold. */
  const hold = async (app: TestApp, seatId: string, ttlSeconds: number) => ({
    seatId,
    ...(await holdOne(localPort(app), seatId, { ttlSeconds })),
  });

  for (const [adapter, make] of Object.entries(ADAPTERS)) {
    test.serial(
      `[${kind}/${adapter}] a hold is free for another user right after it ends, before any sweep`,
      async (t) => {
        const port = make(quiet);
        const e = await eventOf(quiet, 1);
        const seatId = e.seats[0].seat_id;
        const first = await holdOne(port, seatId, { ttlSeconds: 30 });
        const second = { userId: randomUUID(), orderId: randomUUID() };
        await rejects(t, holdOne(port, seatId, { ...second, ttlSeconds: 3600 }), 'SEAT_UNAVAILABLE');
        quietClock.advance(Date.parse(first.heldUntil) - quietClock.now());
        // The row still says HELD by the first user; nobody swept it.
        t.like(await seatRow(quiet, seatId), { status: 'HELD', held_by_user_id: first.userId });
        const map = await quiet.request('GET', `/api/events/${e.eventId}`);
        t.is(map.body.data.seats[0].status, 'AVAILABLE');
        t.is(map.body.data.available_seats, 1);
        const taken = await holdOne(port, seatId, { ...second, ttlSeconds: 3600 });
        t.like(taken, { ...second, seats: [{ seatId }] });
        t.like(await seatRow(quiet, seatId), {
          status: 'HELD',
          held_by_user_id: second.userId,
          hold_order_id: second.orderId,
          held_until: Date.parse(taken.heldUntil),
        });
        t.like(await port.getSeat({ seatId }), { status: 'HELD', heldByUserId: second.userId });
      },
    );
  }

  test.serial(`[${kind}] sweeps running at once clear each expired hold exactly once`, async (t) => {
    const db = quiet.kernel.databases.get('event')!;
    const e = await eventOf(quiet, 25);
    const seats = e.seats.map((s) => s.seat_id);
    const expiring = seats.slice(0, 20);
    const live = seats.slice(20);
    await Promise.all(expiring.map((s) => hold(quiet, s, 30)));
    const liveHolds = await Promise.all(live.map((s) => hold(quiet, s, 300)));
    quietClock.advance(30_000);
    // Four sweepers, as four processes would run them, each its own instance on the database.
    const swept = await Promise.all(
      Array.from({ length: 4 }, () =>
        createSeats(db, quiet.kernel.clock, createIdempotency(db, quiet.kernel.clock)).sweep(),
      ),
    );
    t.is(
      swept.reduce((a, b) => a + b, 0),
      20,
      `each expired hold swept once: ${swept}`,
    );
    for (const s of expiring) t.like(await seatRow(quiet, s), SWEPT);
    for (const h of liveHolds) {
      t.like(await seatRow(quiet, h.seatId), { status: 'HELD', held_by_user_id: h.userId, hold_order_id: h.orderId });
    }
    t.is(
      await createSeats(db, quiet.kernel.clock, createIdempotency(db, quiet.kernel.clock)).sweep(),
      0,
      'a second sweep finds nothing',
    );
  });

  test(`[${kind}] the sweeper turns expired holds back to AVAILABLE, keeps live ones, and is idempotent`, async (t) => {
    const e = await eventOf(sweeping, 6);
    const seats = e.seats.map((s) => s.seat_id);
    const before = await metric(sweeping, 'event_holds_expired_total');
    const expiring = await Promise.all(seats.slice(0, 3).map((s) => hold(sweeping, s, 30)));
    const live = await Promise.all(seats.slice(3, 5).map((s) => hold(sweeping, s, 300)));
    t.like(await seatRow(sweeping, expiring[0].seatId), { status: 'HELD' });

    sweepingClock.advance(30_000);
    const cleared = await until(async () => {
      const rows = await Promise.all(expiring.map((h) => seatRow(sweeping, h.seatId)));
      return rows.every((r) => r?.status === 'AVAILABLE');
    });
    t.true(cleared, 'the sweeper cleared the expired holds');
    for (const h of expiring) t.like(await seatRow(sweeping, h.seatId), SWEPT);
    for (const h of live) {
      t.like(await seatRow(sweeping, h.seatId), {
        status: 'HELD',
        held_by_user_id: h.userId,
        hold_order_id: h.orderId,
        held_until: Date.parse(h.heldUntil),
      });
    }
    t.like(await seatRow(sweeping, seats[5]), SWEPT, 'a seat never held is untouched');
    t.is(await metric(sweeping, 'event_holds_expired_total'), before + 3);

    // Several more sweeps change nothing: not the rows, not their updated_at, not the counter.
    const snapshot = await Promise.all(seats.map((s) => seatRow(sweeping, s)));
    for (let i = 0; i < 3; i++) await sweeping.kernel.jobs.run('event', 'hold-sweeper');
    t.deepEqual(await Promise.all(seats.map((s) => seatRow(sweeping, s))), snapshot);
    t.is(await metric(sweeping, 'event_holds_expired_total'), before + 3);
    const map = await sweeping.request('GET', `/api/events/${e.eventId}`);
    t.is(map.body.data.available_seats, 4);
    // A swept seat is anyone's.
    t.truthy(await hold(sweeping, expiring[0].seatId, 60));
  });
}
