import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import type { EventPort } from '../../src/modules/event/index.js';
import { DATABASES } from '../helpers/app.js';
import { rejects } from '../helpers/assert.js';
import { ADAPTERS, moveIntoPast, seatRow, sellSeat, smallEvent } from '../helpers/events.js';
import { sharedAppWithAdmin } from '../helpers/users.js';

/**
 * One contract for the event port, run against the in-process adapter and the HTTP adapter on
 * every database: reads, holds, release, confirm and owner changes (the door, the argument
 * checks and the service credential are in port.door.test.ts). The sweeper is held off, so an
 * expired hold stays in its row as HELD and only the readers' rule makes it available.
 */

const SEAT_KEYS = [
  'category',
  'checkedInAt',
  'eventId',
  'heldByUserId',
  'heldUntil',
  'holdOrderId',
  'ownerUserId',
  'price',
  'pricePaid',
  'rowNumber',
  'seatId',
  'seatNumber',
  'soldOrderId',
  'status',
];

for (const kind of DATABASES) {
  // TTLs pass on a clock the tests move; the tests that move it run serially.
  const clock = manualClock();
  const { app, admin } = sharedAppWithAdmin(kind, { SWEEP_INTERVAL_MS: '3600000' }, clock);

  const small = () => smallEvent(app, admin);

  for (const [adapter, make] of Object.entries(ADAPTERS)) {
    const name = (s: string) => `[${kind}/${adapter}] ${s}`;
    const hold = (
      port: EventPort,
      seatId: string,
      ttlSeconds = 300,
      userId: string = randomUUID(),
      orderId: string = randomUUID(),
    ) => port.holdSeat({ seatId, userId, orderId, ttlSeconds });

    test(name('getEvent, getSeat, getSeats and listSeatsOwnedBy read the catalogue in cents'), async (t) => {
      const port = make(app);
      const e = await small();
      const event = await port.getEvent({ eventId: e.eventId });
      t.like(event, { eventId: e.eventId, venueId: e.venueId, hallId: 'HALL-A', totalSeats: 6 });
      t.deepEqual(event.pricingTiers, { CAT1: 14950, CAT2: 8000 });
      t.regex(event.eventDate, /Z$/);
      t.is(typeof event.venueName, 'string');
      await rejects(t, port.getEvent({ eventId: randomUUID() }), 'EVENT_NOT_FOUND');

      const [a1, a2, , b1] = e.seats.map((s) => s.seat_id);
      const seat = await port.getSeat({ seatId: b1 });
      t.deepEqual(Object.keys(seat).sort(), SEAT_KEYS);
      t.deepEqual(seat, {
        seatId: b1,
        eventId: e.eventId,
        rowNumber: 'B',
        seatNumber: 1,
        category: 'CAT2',
        price: 8000,
        status: 'AVAILABLE',
        ownerUserId: null,
        heldByUserId: null,
        holdOrderId: null,
        heldUntil: null,
        soldOrderId: null,
        pricePaid: null,
        checkedInAt: null,
      });
      await rejects(t, port.getSeat({ seatId: randomUUID() }), 'SEAT_NOT_FOUND');

      const some = await port.getSeats({ seatIds: [a1, b1, randomUUID()] });
      t.deepEqual(some.map((s) => s.seatId).sort(), [a1, b1].sort());
      t.deepEqual(
        some.find((s) => s.seatId === b1),
        seat,
      );
      t.deepEqual(await port.getSeats({ seatIds: [] }), []);

      const owner = randomUUID();
      t.deepEqual(await port.listSeatsOwnedBy({ userId: owner }), []);
      const sold = await sellSeat(port, a2, owner, 14950);
      await sellSeat(port, a1, owner, 100);
      const owned = await port.listSeatsOwnedBy({ userId: owner });
      t.deepEqual(
        owned.map((s) => [s.seatId, s.status, s.ownerUserId, s.pricePaid]),
        [
          [a1, 'SOLD', owner, 100],
          [a2, 'SOLD', owner, 14950],
        ],
        'in seat-map order',
      );
      t.deepEqual(owned[1], sold.seat);
    });

    test(name('holdSeat returns the hold; the same user and order get the same hold back'), async (t) => {
      const port = make(app);
      const e = await small();
      const seatId = e.seats[0].seat_id;
      const [user, order] = [randomUUID(), randomUUID()];
      const before = clock.now();
      const h = await port.holdSeat({ seatId, userId: user, orderId: order, ttlSeconds: 120 });
      t.deepEqual(Object.keys(h).sort(), ['eventId', 'heldUntil', 'orderId', 'price', 'seatId', 'userId']);
      t.like(h, { seatId, eventId: e.eventId, userId: user, orderId: order, price: 14950 });
      const until = Date.parse(h.heldUntil);
      t.true(until >= before + 120_000 - 5 && until <= clock.now() + 120_000 + 5, h.heldUntil);
      t.regex(h.heldUntil, /Z$/);
      t.like(await port.getSeat({ seatId }), {
        status: 'HELD',
        heldByUserId: user,
        holdOrderId: order,
        heldUntil: h.heldUntil,
        ownerUserId: null,
      });

      await sleep(30);
      t.deepEqual(await port.holdSeat({ seatId, userId: user, orderId: order, ttlSeconds: 120 }), h, 'same hold');
      t.deepEqual(await port.holdSeat({ seatId, userId: user, orderId: order, ttlSeconds: 5 }), h, 'TTL not reset');
      await rejects(t, hold(port, seatId, 120, user), 'SEAT_UNAVAILABLE');
      await rejects(t, hold(port, seatId, 120, randomUUID(), order), 'SEAT_UNAVAILABLE');
      await rejects(t, hold(port, seatId), 'SEAT_UNAVAILABLE');
      t.like(await seatRow(app, seatId), { held_by_user_id: user, hold_order_id: order, held_until: until });
      await rejects(t, hold(port, randomUUID()), 'SEAT_NOT_FOUND');
    });

    test(name('holdSeat refuses sold, checked-in and ended seats with their codes'), async (t) => {
      const port = make(app);
      const e = await small();
      const [a1, a2] = e.seats.map((s) => s.seat_id);
      const sold = await sellSeat(port, a1);
      await rejects(t, hold(port, a1), 'SEAT_ALREADY_SOLD');
      await rejects(t, hold(port, a1, 300, sold.userId, sold.orderId), 'SEAT_ALREADY_SOLD');
      const v = await port.checkIn({
        seatId: a1,
        expectedOwnerId: sold.userId,
        staffId: randomUUID(),
        presentedHall: 'HALL-A',
      });
      t.is(v.result, 'SUCCESS');
      await rejects(t, hold(port, a1), 'SEAT_ALREADY_SOLD');
      t.like(await seatRow(app, a1), { status: 'CHECKED_IN', owner_user_id: sold.userId });

      const ended = await small();
      await moveIntoPast(app, ended.eventId);
      await rejects(t, hold(port, ended.seats[0].seat_id), 'EVENT_ENDED');
      t.like(await seatRow(app, ended.seats[0].seat_id), { status: 'AVAILABLE', held_by_user_id: null });
      // A hold taken before the event ended cannot be renewed after it.
      const live = await hold(port, a2);
      await moveIntoPast(app, e.eventId);
      await rejects(t, hold(port, a2, 300, live.userId, live.orderId), 'EVENT_ENDED');
    });

    test.serial(
      name('an expired hold is anyone’s: another user takes it, and its first holder cannot confirm'),
      async (t) => {
        const port = make(app);
        const e = await small();
        const seatId = e.seats[1].seat_id;
        const first = await hold(port, seatId, 30);
        clock.advance(30_000);
        t.like(await port.getSeat({ seatId }), { status: 'AVAILABLE', heldByUserId: null, holdOrderId: null });
        await rejects(
          t,
          port.confirmSeat({ seatId, orderId: first.orderId, userId: first.userId, pricePaid: 14950 }),
          'HOLD_EXPIRED',
        );
        const second = await hold(port, seatId, 60);
        t.true(Date.parse(second.heldUntil) > Date.parse(first.heldUntil));
        await rejects(
          t,
          port.confirmSeat({ seatId, orderId: first.orderId, userId: first.userId, pricePaid: 14950 }),
          'SEAT_NOT_HELD',
        );
        t.false((await port.releaseHold({ seatId, orderId: first.orderId })).released);
        // The first holder re-holding with its old order now gets a new hold only if the seat is free.
        await rejects(t, hold(port, seatId, 60, first.userId, first.orderId), 'SEAT_UNAVAILABLE');
        t.like(await seatRow(app, seatId), { held_by_user_id: second.userId, hold_order_id: second.orderId });
      },
    );

    test(name('releaseHold frees the seat for the holding order only; a repeat says released:false'), async (t) => {
      const port = make(app);
      const e = await small();
      const [a1, a2] = e.seats.map((s) => s.seat_id);
      const h = await hold(port, a1);
      t.deepEqual(await port.releaseHold({ seatId: a1, orderId: randomUUID() }), { released: false });
      t.like(await port.getSeat({ seatId: a1 }), { status: 'HELD', holdOrderId: h.orderId });
      t.deepEqual(await port.releaseHold({ seatId: a1, orderId: h.orderId }), { released: true });
      t.like(await seatRow(app, a1), {
        status: 'AVAILABLE',
        held_by_user_id: null,
        hold_order_id: null,
        held_until: null,
      });
      t.deepEqual(await port.releaseHold({ seatId: a1, orderId: h.orderId }), { released: false });
      t.deepEqual(await port.releaseHold({ seatId: randomUUID(), orderId: h.orderId }), { released: false });
      // A released seat is anyone's at once.
      t.truthy(await hold(port, a1));
      // A sold seat is not released by its (former) hold order.
      const sold = await sellSeat(port, a2);
      t.deepEqual(await port.releaseHold({ seatId: a2, orderId: sold.orderId }), { released: false });
      t.like(await seatRow(app, a2), { status: 'SOLD', owner_user_id: sold.userId });
    });

    test.serial(
      name('confirmSeat sells a live hold of that order and user; a repeat answers the same seat'),
      async (t) => {
        const port = make(app);
        const e = await small();
        const [a1, a2, a3] = e.seats.map((s) => s.seat_id);
        const h = await hold(port, a1);
        await rejects(
          t,
          port.confirmSeat({ seatId: a1, orderId: randomUUID(), userId: h.userId, pricePaid: 1 }),
          'SEAT_NOT_HELD',
        );
        await rejects(
          t,
          port.confirmSeat({ seatId: a1, orderId: h.orderId, userId: randomUUID(), pricePaid: 1 }),
          'SEAT_NOT_HELD',
        );
        const sold = await port.confirmSeat({ seatId: a1, orderId: h.orderId, userId: h.userId, pricePaid: 12000 });
        t.deepEqual(sold, {
          ...sold,
          seatId: a1,
          status: 'SOLD',
          ownerUserId: h.userId,
          soldOrderId: h.orderId,
          pricePaid: 12000,
          price: 14950,
          heldByUserId: null,
          holdOrderId: null,
          heldUntil: null,
          checkedInAt: null,
        });
        t.deepEqual(
          await port.confirmSeat({ seatId: a1, orderId: h.orderId, userId: h.userId, pricePaid: 12000 }),
          sold,
        );
        t.deepEqual(await port.getSeat({ seatId: a1 }), sold);
        await rejects(
          t,
          port.confirmSeat({ seatId: a1, orderId: randomUUID(), userId: h.userId, pricePaid: 12000 }),
          'SEAT_NOT_HELD',
        );
        await rejects(
          t,
          port.confirmSeat({ seatId: a2, orderId: randomUUID(), userId: randomUUID(), pricePaid: 1 }),
          'SEAT_NOT_HELD',
        );
        await rejects(
          t,
          port.confirmSeat({ seatId: randomUUID(), orderId: randomUUID(), userId: randomUUID(), pricePaid: 1 }),
          'SEAT_NOT_FOUND',
        );
        // A hold past its TTL cannot be confirmed, even though no sweep has run.
        const late = await hold(port, a3, 30);
        clock.advance(30_000);
        await rejects(
          t,
          port.confirmSeat({ seatId: a3, orderId: late.orderId, userId: late.userId, pricePaid: 14950 }),
          'HOLD_EXPIRED',
        );
        t.like(await seatRow(app, a3), { status: 'HELD', owner_user_id: null });
      },
    );

    test(name('setOwner moves a sold seat from its expected owner; repeats are safe'), async (t) => {
      const port = make(app);
      const e = await small();
      const [a1, a2, a3, b1] = e.seats.map((s) => s.seat_id);
      const { userId: seller, seat } = await sellSeat(port, a1);
      const buyer = randomUUID();
      const moved = await port.setOwner({ seatId: a1, expectedOwnerId: seller, newOwnerId: buyer });
      t.deepEqual(moved, { ...seat, ownerUserId: buyer });
      t.deepEqual(await port.setOwner({ seatId: a1, expectedOwnerId: seller, newOwnerId: buyer }), moved);
      await rejects(
        t,
        port.setOwner({ seatId: a1, expectedOwnerId: seller, newOwnerId: randomUUID() }),
        'NOT_SEAT_OWNER',
      );
      await rejects(
        t,
        port.setOwner({ seatId: a1, expectedOwnerId: randomUUID(), newOwnerId: randomUUID() }),
        'NOT_SEAT_OWNER',
      );
      t.deepEqual(
        (await port.listSeatsOwnedBy({ userId: buyer })).map((s) => s.seatId),
        [a1],
      );
      t.deepEqual(await port.listSeatsOwnedBy({ userId: seller }), []);
      // And back: a reversal is the same call the other way round.
      t.like(await port.setOwner({ seatId: a1, expectedOwnerId: buyer, newOwnerId: seller }), { ownerUserId: seller });

      const anyone = { expectedOwnerId: randomUUID(), newOwnerId: randomUUID() };
      await rejects(t, port.setOwner({ seatId: a2, ...anyone }), 'SEAT_UNAVAILABLE');
      const h = await hold(port, a3);
      await rejects(
        t,
        port.setOwner({ seatId: a3, expectedOwnerId: h.userId, newOwnerId: randomUUID() }),
        'SEAT_UNAVAILABLE',
      );
      const used = await sellSeat(port, b1);
      await port.checkIn({ seatId: b1, expectedOwnerId: used.userId, staffId: randomUUID(), presentedHall: 'HALL-A' });
      await rejects(
        t,
        port.setOwner({ seatId: b1, expectedOwnerId: used.userId, newOwnerId: randomUUID() }),
        'SEAT_UNAVAILABLE',
      );
      t.like(await seatRow(app, b1), { status: 'CHECKED_IN', owner_user_id: used.userId });
      await rejects(t, port.setOwner({ seatId: randomUUID(), ...anyone }), 'SEAT_NOT_FOUND');
    });
  }
}
