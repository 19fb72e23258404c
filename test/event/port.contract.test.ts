import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { AppError } from '../../src/kernel/errors.js';
import type { SeatDto } from '../../src/modules/event/index.js';
import { DATABASES, type TestApp } from '../helpers/app.js';
import { rejects } from '../helpers/assert.js';
import {
  ADAPTERS,
  eventSql,
  HOLD_LIMIT,
  holdOne,
  moveIntoPast,
  seatIds,
  seatRow,
  sellSeat,
  smallEvent,
} from '../helpers/events.js';
import { metric } from '../helpers/metrics.js';
import { sharedAppWithAdmin } from '../helpers/users.js';

/**
 * One contract for the event port, run against the in-process adapter and the HTTP adapter on
 * every database: reads, an order's holds, its release, its sale and its abandonment (with the
 * abandonOrder route's argument checks), and owner changes (the door, the other argument checks
 * and the service credential are in port.door.test.ts). The sweeper is held off, so an
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

/** A reserve of these seats under the product's default TTL and hold limit. */
const reserve = (userId: string, orderId: string, seatIds: string[]) => ({
  seatIds,
  userId,
  orderId,
  ttlSeconds: 300,
  holdLimit: HOLD_LIMIT,
});

/** The typed error a promise rejects with. */
async function refused(t: ExecutionContext, p: Promise<unknown>): Promise<AppError> {
  const err = await t.throwsAsync(p);
  t.true(err instanceof AppError, `expected an AppError, got ${err?.constructor.name}: ${err?.message}`);
  return err as AppError;
}

/** A refusal's code and the fields its details name. */
async function refusal(t: ExecutionContext, p: Promise<unknown>) {
  const err = await refused(t, p);
  return { code: err.code as string, fields: (err.details ?? []).map((d) => d.field) };
}

/** The ids of an event's seats whose rows say HELD, sorted. */
const heldSeats = async (app: TestApp, eventId: string) =>
  (
    await eventSql<{ id: string }>(
      app,
      (tb) => `select id from ${tb('seats')} where event_id = ? and status = 'HELD'`,
      [eventId],
    )
  )
    .map((r) => r.id)
    .sort();

const inOrderOf = (seats: SeatDto[], ids: string[]) => ids.map((id) => seats.find((s) => s.seatId === id));

for (const kind of DATABASES) {
  // TTLs pass on a clock the tests move; the tests that move it run serially.
  const clock = manualClock();
  const { app, admin } = sharedAppWithAdmin(kind, { SWEEP_INTERVAL_MS: '3600000' }, clock);

  const small = () => smallEvent(app, admin);

  for (const [adapter, make] of Object.entries(ADAPTERS)) {
    const name = (s: string) => `[${kind}/${adapter}] ${s}`;
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

    test(name('holdSeats holds every seat for the order and answers them in the order asked'), async (t) => {
      const port = make(app);
      const e = await small();
      const [a1, a2, a3, b1] = e.seats.map((s) => s.seat_id);
      const [user, order] = [randomUUID(), randomUUID()];
      const before = clock.now();
      const h = await port.holdSeats({ ...reserve(user, order, [b1, a1, a2]), ttlSeconds: 120 });
      t.deepEqual(Object.keys(h).sort(), ['eventId', 'heldUntil', 'orderId', 'seats', 'total', 'userId']);
      t.like(h, { orderId: order, userId: user, eventId: e.eventId, total: 8000 + 2 * 14950 });
      t.deepEqual(h.seats, [
        { seatId: b1, rowNumber: 'B', seatNumber: 1, category: 'CAT2', price: 8000 },
        { seatId: a1, rowNumber: 'A', seatNumber: 1, category: 'CAT1', price: 14950 },
        { seatId: a2, rowNumber: 'A', seatNumber: 2, category: 'CAT1', price: 14950 },
      ]);
      t.regex(h.heldUntil, /Z$/);
      const until = Date.parse(h.heldUntil);
      t.true(until >= before + 120_000 && until <= clock.now() + 120_000, h.heldUntil);
      for (const seatId of [b1, a1, a2]) {
        t.like(await seatRow(app, seatId), {
          status: 'HELD',
          held_by_user_id: user,
          hold_order_id: order,
          held_until: until,
          owner_user_id: null,
        });
        t.like(await port.getSeat({ seatId }), { status: 'HELD', holdOrderId: order, heldUntil: h.heldUntil });
      }
      t.like(await seatRow(app, a3), { status: 'AVAILABLE', held_by_user_id: null });
      // One seat is an order of one.
      const one = await port.holdSeats(reserve(randomUUID(), randomUUID(), [a3]));
      t.like(one, { eventId: e.eventId, total: 14950, seats: [{ seatId: a3, price: 14950 }] });
    });

    test(
      name('a reserve of exactly the seats of one’s live order answers that order, whatever orderId says'),
      async (t) => {
        const port = make(app);
        const e = await small();
        const [a1, a2, a3, b1] = e.seats.map((s) => s.seat_id);
        const [user, order] = [randomUUID(), randomUUID()];
        const h = await port.holdSeats({ ...reserve(user, order, [a1, b1]), ttlSeconds: 120 });
        const rows = async () => Promise.all([a1, a2, a3, b1].map((s) => seatRow(app, s)));
        const before = await rows();
        await sleep(5);
        t.deepEqual(await port.holdSeats({ ...reserve(user, order, [a1, b1]), ttlSeconds: 120 }), h, 'same order');
        t.deepEqual(await port.holdSeats({ ...reserve(user, order, [a1, b1]), ttlSeconds: 5 }), h, 'TTL not reset');
        t.deepEqual(
          await port.holdSeats(reserve(user, randomUUID(), [b1, a1])),
          { ...h, seats: [h.seats[1], h.seats[0]] },
          'another order id of the same user: the live order, seats as asked',
        );
        // Not exactly the order's seats, or not this user: the seats are held by another live order.
        t.deepEqual(await refusal(t, port.holdSeats(reserve(user, order, [a1]))), {
          code: 'SEAT_UNAVAILABLE',
          fields: ['seat_ids[0]'],
        });
        t.deepEqual(await refusal(t, port.holdSeats(reserve(user, order, [a2, a1, b1]))), {
          code: 'SEAT_UNAVAILABLE',
          fields: ['seat_ids[1]', 'seat_ids[2]'],
        });
        t.deepEqual(await refusal(t, port.holdSeats(reserve(randomUUID(), order, [a1, b1]))), {
          code: 'SEAT_UNAVAILABLE',
          fields: ['seat_ids[0]', 'seat_ids[1]'],
        });
        t.deepEqual(await rows(), before, 'nothing changed, not even updated_at');
        // Two live orders of the same user over a2 and a3 are no single order of these seats.
        const second = await port.holdSeats(reserve(user, randomUUID(), [a2]));
        const third = await port.holdSeats(reserve(user, randomUUID(), [a3]));
        t.not(second.orderId, third.orderId);
        t.deepEqual(await refusal(t, port.holdSeats(reserve(user, randomUUID(), [a2, a3]))), {
          code: 'SEAT_UNAVAILABLE',
          fields: ['seat_ids[0]', 'seat_ids[1]'],
        });
      },
    );

    test(name('holdSeats holds all or none: the first refusal by precedence, every refused seat named'), async (t) => {
      const port = make(app);
      const e = await small();
      const [a1, a2, a3, b1] = e.seats.map((s) => s.seat_id);
      const ghost = randomUUID();
      const sold = await sellSeat(port, a1);
      const elsewhere = await holdOne(port, a2);
      const held = async () => heldSeats(app, e.eventId);
      const before = await held();

      const mixed = await refused(t, port.holdSeats(reserve(randomUUID(), randomUUID(), [b1, a2, ghost, a1])));
      t.is(mixed.code, 'SEAT_NOT_FOUND');
      t.deepEqual(mixed.details, [
        { field: 'seat_ids[1]', message: 'This seat is held by someone else; try another or come back later.' },
        { field: 'seat_ids[2]', message: 'No such seat.' },
        { field: 'seat_ids[3]', message: 'This seat is sold.' },
      ]);
      t.deepEqual(await refusal(t, port.holdSeats(reserve(randomUUID(), randomUUID(), [b1, a2, a1]))), {
        code: 'SEAT_ALREADY_SOLD',
        fields: ['seat_ids[1]', 'seat_ids[2]'],
      });
      t.deepEqual(await refusal(t, port.holdSeats(reserve(randomUUID(), randomUUID(), [a2, b1]))), {
        code: 'SEAT_UNAVAILABLE',
        fields: ['seat_ids[0]'],
      });
      // The seller's own order id is no key to a sold seat.
      t.deepEqual(await refusal(t, port.holdSeats(reserve(sold.userId, sold.orderId, [a1]))), {
        code: 'SEAT_ALREADY_SOLD',
        fields: ['seat_ids[0]'],
      });
      t.deepEqual(await held(), before, 'nothing was held');
      t.like(await seatRow(app, b1), { status: 'AVAILABLE', held_by_user_id: null, hold_order_id: null });
      t.like(await seatRow(app, a2), { held_by_user_id: elsewhere.userId, hold_order_id: elsewhere.orderId });

      const v = await port.checkIn({
        seatId: a1,
        expectedOwnerId: sold.userId,
        staffId: randomUUID(),
        presentedHall: 'HALL-A',
      });
      t.is(v.result, 'SUCCESS');
      await rejects(t, holdOne(port, a1), 'SEAT_ALREADY_SOLD');
      t.like(await seatRow(app, a1), { status: 'CHECKED_IN', owner_user_id: sold.userId });

      // An ended event refuses every seat of it, sold or not; only an unknown seat comes first.
      const ended = await small();
      const [x1, x2] = ended.seats.map((s) => s.seat_id);
      await sellSeat(port, x2);
      await moveIntoPast(app, ended.eventId);
      const late = await refused(t, port.holdSeats(reserve(randomUUID(), randomUUID(), [x1, x2])));
      t.is(late.code, 'EVENT_ENDED');
      t.deepEqual(late.details, [
        { field: 'seat_ids[0]', message: 'This event has already taken place.' },
        { field: 'seat_ids[1]', message: 'This event has already taken place.' },
      ]);
      t.deepEqual(await refusal(t, port.holdSeats(reserve(randomUUID(), randomUUID(), [x1, ghost]))), {
        code: 'SEAT_NOT_FOUND',
        fields: ['seat_ids[0]', 'seat_ids[1]'],
      });
      t.like(await seatRow(app, x1), { status: 'AVAILABLE', held_by_user_id: null });
      // A hold taken before the event ended cannot be renewed after it, not even by a repeat.
      const live = await port.holdSeats(reserve(randomUUID(), randomUUID(), [a3, b1]));
      await moveIntoPast(app, e.eventId);
      t.deepEqual(await refusal(t, port.holdSeats(reserve(live.userId, live.orderId, [a3, b1]))), {
        code: 'EVENT_ENDED',
        fields: ['seat_ids[0]', 'seat_ids[1]'],
      });
    });

    test(
      name('seats of two events are a VALIDATION_ERROR naming the seats not of the first seat’s event'),
      async (t) => {
        const port = make(app);
        const [one, two] = await Promise.all([small(), small()]);
        const [p1, p2] = one.seats.map((s) => s.seat_id);
        const [q1, q2] = two.seats.map((s) => s.seat_id);
        const ghost = randomUUID();
        t.deepEqual(await refusal(t, port.holdSeats(reserve(randomUUID(), randomUUID(), [p1, q1, p2, q2]))), {
          code: 'VALIDATION_ERROR',
          fields: ['seat_ids[1]', 'seat_ids[3]'],
        });
        // The first seat that exists decides; the mix is refused before any seat's own refusal.
        await sellSeat(port, p2);
        t.deepEqual(await refusal(t, port.holdSeats(reserve(randomUUID(), randomUUID(), [ghost, q1, p2, q2]))), {
          code: 'VALIDATION_ERROR',
          fields: ['seat_ids[2]'],
        });
        t.deepEqual(await heldSeats(app, one.eventId), []);
        t.deepEqual(await heldSeats(app, two.eventId), []);
      },
    );

    test(
      name('the hold limit counts the user’s live seats in every other order; seats are refused first'),
      async (t) => {
        const port = make(app);
        const e = await small();
        const [a1, a2, a3, b1, b2, b3] = e.seats.map((s) => s.seat_id);
        const user = randomUUID();
        const limited = (seatIds: string[], orderId = randomUUID(), userId = user) =>
          port.holdSeats({ ...reserve(userId, orderId, seatIds), holdLimit: 4 });
        const x = await limited([a1, a2]);
        t.like(await limited([a3, b1]), { userId: user, total: 14950 + 8000 }, 'exactly at the limit');
        await rejects(t, limited([b2]), 'HOLD_LIMIT_REACHED');
        t.like(await seatRow(app, b2), { status: 'AVAILABLE', held_by_user_id: null });
        t.deepEqual(await limited([a2, a1]), { ...x, seats: [x.seats[1], x.seats[0]] }, 'a repeat takes nothing new');
        // A seat refusal comes before the limit.
        t.like(
          await limited([b2], randomUUID(), randomUUID()),
          { seats: [{ seatId: b2 }] },
          'another user’s own limit',
        );
        t.deepEqual(await refusal(t, limited([b3, b2])), { code: 'SEAT_UNAVAILABLE', fields: ['seat_ids[1]'] });
        t.like(await seatRow(app, b3), { status: 'AVAILABLE', held_by_user_id: null });
        t.is((await port.releaseOrder({ orderId: x.orderId })).released, 2);
        t.like(await limited([a1, a2]), { userId: user }, 'a released order frees its share of the limit');
        // One request of more seats than the limit.
        const big = await small();
        await rejects(
          t,
          port.holdSeats({ ...reserve(randomUUID(), randomUUID(), seatIds(big).slice(0, 3)), holdLimit: 2 }),
          'HOLD_LIMIT_REACHED',
        );
        t.deepEqual(await heldSeats(app, big.eventId), []);
      },
    );

    test(name('releaseOrder frees every seat still held for the order; a repeat releases none'), async (t) => {
      const port = make(app);
      const e = await small();
      const [a1, a2, a3, b1] = e.seats.map((s) => s.seat_id);
      const h = await port.holdSeats(reserve(randomUUID(), randomUUID(), [a1, a2]));
      const other = await holdOne(port, b1);
      t.deepEqual(await port.releaseOrder({ orderId: randomUUID() }), { released: 0 });
      t.deepEqual(await heldSeats(app, e.eventId), [a1, a2, b1].sort());
      t.deepEqual(await port.releaseOrder({ orderId: h.orderId }), { released: 2 });
      for (const seatId of [a1, a2]) {
        t.like(await seatRow(app, seatId), {
          status: 'AVAILABLE',
          held_by_user_id: null,
          hold_order_id: null,
          held_until: null,
        });
      }
      t.like(await seatRow(app, b1), { status: 'HELD', hold_order_id: other.orderId });
      t.deepEqual(await port.releaseOrder({ orderId: h.orderId }), { released: 0 });
      // Released seats are anyone's at once.
      t.like(await holdOne(port, a1), { seats: [{ seatId: a1 }] });
      // A sold seat is not released by its (former) hold order.
      const sold = await sellSeat(port, a3);
      t.deepEqual(await port.releaseOrder({ orderId: sold.orderId }), { released: 0 });
      t.like(await seatRow(app, a3), { status: 'SOLD', owner_user_id: sold.userId });
    });

    test.serial(
      name(
        'abandonOrder releases the order’s live and expired holds, answers { released, sold: 0 }; no confirm sells them after',
      ),
      async (t) => {
        const port = make(app);
        const e = await small();
        const [a1, a2, a3, b1] = e.seats.map((s) => s.seat_id);
        const [user, order] = [randomUUID(), randomUUID()];
        await port.holdSeats({ ...reserve(user, order, [a1]), ttlSeconds: 30 });
        clock.advance(30_000);
        // The order holds a second seat, live, beside its expired first hold (still HELD in its row).
        await port.holdSeats({ ...reserve(user, order, [a2]), ttlSeconds: 30 });
        const other = await holdOne(port, b1);
        t.like(await seatRow(app, a1), { status: 'HELD', hold_order_id: order });
        t.deepEqual(await port.abandonOrder({ orderId: order, seatIds: [a1, a2] }), { released: 2, sold: 0 });
        const untouched = async () => {
          for (const seatId of [a1, a2]) {
            t.like(await seatRow(app, seatId), {
              status: 'AVAILABLE',
              held_by_user_id: null,
              hold_order_id: null,
              held_until: null,
              owner_user_id: null,
              sold_order_id: null,
              price_paid: null,
            });
          }
        };
        await untouched();
        t.like(
          await seatRow(app, b1),
          { status: 'HELD', hold_order_id: other.orderId },
          'another order keeps its hold',
        );
        // A confirm of the order arriving late (its live second hold would have sold) is refused, and sells nothing.
        const sale = { orderId: order, userId: user };
        await rejects(t, port.confirmOrder({ ...sale, seats: [{ seatId: a2, pricePaid: 14950 }] }), 'SEAT_NOT_HELD');
        await rejects(
          t,
          port.confirmOrder({
            ...sale,
            seats: [
              { seatId: a1, pricePaid: 14950 },
              { seatId: a2, pricePaid: 14950 },
            ],
          }),
          'SEAT_NOT_HELD',
        );
        await untouched();
        t.deepEqual(
          await port.abandonOrder({ orderId: order, seatIds: [a1, a2] }),
          { released: 0, sold: 0 },
          'a repeat',
        );
        t.deepEqual(await port.abandonOrder({ orderId: randomUUID(), seatIds: [a3] }), { released: 0, sold: 0 });
        t.like(await seatRow(app, a3), { status: 'AVAILABLE' });
      },
    );

    test(
      name('abandonOrder after a confirm releases nothing and answers { released: 0, sold: n }; a repeat the same'),
      async (t) => {
        const port = make(app);
        const e = await small();
        const [a1, , a3, b1] = e.seats.map((s) => s.seat_id);
        const h = await port.holdSeats(reserve(randomUUID(), randomUUID(), [a1, b1]));
        const sale = {
          orderId: h.orderId,
          userId: h.userId,
          seats: [
            { seatId: a1, pricePaid: 14950 },
            { seatId: b1, pricePaid: 8000 },
          ],
        };
        const sold = await port.confirmOrder(sale);
        const rows = async () => Promise.all([a1, b1].map((s) => seatRow(app, s)));
        const before = await rows();
        await sleep(5);
        t.deepEqual(await port.abandonOrder({ orderId: h.orderId, seatIds: [a1, b1] }), { released: 0, sold: 2 });
        t.deepEqual(
          await port.abandonOrder({ orderId: h.orderId, seatIds: [b1, a1] }),
          { released: 0, sold: 2 },
          'a repeat',
        );
        t.deepEqual(await rows(), before, 'the sold seats are untouched, not even updated_at');
        // Only the seats asked about that this very order bought count.
        t.deepEqual(await port.abandonOrder({ orderId: h.orderId, seatIds: [b1, a3, randomUUID()] }), {
          released: 0,
          sold: 1,
        });
        t.deepEqual(await port.abandonOrder({ orderId: randomUUID(), seatIds: [a1, b1] }), { released: 0, sold: 0 });
        t.deepEqual(await port.confirmOrder(sale), sold, 'a repeat of the confirm still answers the sale');
      },
    );

    test(name('abandonOrder refuses malformed arguments with VALIDATION_ERROR and changes nothing'), async (t) => {
      const port = make(app);
      const e = await small();
      const seatId = e.seats[0].seat_id;
      const h = await holdOne(port, seatId);
      const ok = { orderId: h.orderId, seatIds: [seatId] };
      const bad: [string, unknown][] = [
        ['order id not a UUID', { ...ok, orderId: "' OR 1=1 --" }],
        ['seat id not a UUID', { ...ok, seatIds: [seatId, 'seat-1'] }],
        ['no seats', { ...ok, seatIds: [] }],
        ['101 seats', { ...ok, seatIds: [seatId, ...Array.from({ length: 100 }, () => randomUUID())] }],
        ['a seat twice', { ...ok, seatIds: [seatId, seatId] }],
        ['seat ids not a list', { ...ok, seatIds: seatId }],
        ['no seat ids', { orderId: h.orderId }],
        ['no order id', { seatIds: [seatId] }],
      ];
      for (const [what, args] of bad) {
        const err = await refused(t, port.abandonOrder(args as never));
        t.is(err.code, 'VALIDATION_ERROR', what);
      }
      t.like(await seatRow(app, seatId), { status: 'HELD', hold_order_id: h.orderId });
    });

    test(
      name('confirmOrder sells every seat of a live hold at its price, or none; a repeat answers the same'),
      async (t) => {
        const port = make(app);
        const e = await small();
        const [a1, a2, a3, b1] = e.seats.map((s) => s.seat_id);
        const h = await port.holdSeats(reserve(randomUUID(), randomUUID(), [a1, a2, b1]));
        const sale = { orderId: h.orderId, userId: h.userId };
        const prices = [
          { seatId: b1, pricePaid: 7000 },
          { seatId: a1, pricePaid: 12000 },
          { seatId: a2, pricePaid: 14950 },
        ];
        const stillHeld = async () => {
          for (const seatId of [a1, a2, b1]) {
            t.like(await seatRow(app, seatId), { status: 'HELD', hold_order_id: h.orderId, owner_user_id: null });
          }
        };
        await rejects(t, port.confirmOrder({ ...sale, orderId: randomUUID(), seats: prices }), 'SEAT_NOT_HELD');
        await rejects(t, port.confirmOrder({ ...sale, userId: randomUUID(), seats: prices }), 'SEAT_NOT_HELD');
        const outside = [...prices, { seatId: a3, pricePaid: 1 }];
        await rejects(t, port.confirmOrder({ ...sale, seats: outside }), 'SEAT_NOT_HELD');
        const unknown = [...prices, { seatId: randomUUID(), pricePaid: 1 }];
        await rejects(t, port.confirmOrder({ ...sale, seats: unknown }), 'SEAT_NOT_HELD');
        await stillHeld();

        const sold = await port.confirmOrder({ ...sale, seats: prices });
        t.deepEqual(
          sold.map((s) => [s.seatId, s.status, s.ownerUserId, s.soldOrderId, s.pricePaid, s.price]),
          [
            [b1, 'SOLD', h.userId, h.orderId, 7000, 8000],
            [a1, 'SOLD', h.userId, h.orderId, 12000, 14950],
            [a2, 'SOLD', h.userId, h.orderId, 14950, 14950],
          ],
        );
        t.true(sold.every((s) => s.heldByUserId === null && s.holdOrderId === null && s.heldUntil === null));
        t.like(await seatRow(app, a1), { status: 'SOLD', price_paid: 12000, hold_order_id: null, held_until: null });
        t.deepEqual(await port.confirmOrder({ ...sale, seats: prices }), sold, 'a repeat answers the same seats');
        t.deepEqual(await port.getSeats({ seatIds: [b1, a1, a2] }).then((l) => inOrderOf(l, [b1, a1, a2])), sold);
        // Still a repeat once a seat is checked in; never for another order.
        await port.checkIn({ seatId: a1, expectedOwnerId: h.userId, staffId: randomUUID(), presentedHall: 'HALL-A' });
        const again = await port.confirmOrder({ ...sale, seats: prices });
        t.deepEqual(
          again.map((s) => s.status),
          ['SOLD', 'CHECKED_IN', 'SOLD'],
        );
        await rejects(t, port.confirmOrder({ ...sale, orderId: randomUUID(), seats: prices }), 'SEAT_NOT_HELD');
        await rejects(
          t,
          port.confirmOrder({ ...sale, seats: [...prices, { seatId: a3, pricePaid: 1 }] }),
          'SEAT_NOT_HELD',
        );
        t.like(await seatRow(app, a3), { status: 'AVAILABLE', owner_user_id: null });
      },
    );

    test.serial(name('holds count one per seat taken in event_holds_taken_total, none for a repeat'), async (t) => {
      const port = make(app);
      const e = await small();
      const [a1, a2, a3] = e.seats.map((s) => s.seat_id);
      const before = await metric(app, 'event_holds_taken_total');
      const h = await port.holdSeats(reserve(randomUUID(), randomUUID(), [a1, a2, a3]));
      t.is(await metric(app, 'event_holds_taken_total'), before + 3);
      await port.holdSeats(reserve(h.userId, randomUUID(), [a1, a2, a3]));
      await rejects(t, port.holdSeats(reserve(randomUUID(), randomUUID(), [a1])), 'SEAT_UNAVAILABLE');
      t.is(await metric(app, 'event_holds_taken_total'), before + 3);
    });

    test.serial(
      name('an expired hold: its order cannot confirm, it counts for no limit, and another order may take it'),
      async (t) => {
        const port = make(app);
        const e = await small();
        const [a1, a2, , b1, b2] = e.seats.map((s) => s.seat_id);
        const first = await port.holdSeats({ ...reserve(randomUUID(), randomUUID(), [a1, a2]), ttlSeconds: 30 });
        const sale = {
          orderId: first.orderId,
          userId: first.userId,
          seats: [
            { seatId: a1, pricePaid: 14950 },
            { seatId: a2, pricePaid: 14950 },
          ],
        };
        clock.advance(30_000);
        t.like(await port.getSeat({ seatId: a1 }), { status: 'AVAILABLE', heldByUserId: null, holdOrderId: null });
        await rejects(t, port.confirmOrder(sale), 'HOLD_EXPIRED');
        for (const seatId of [a1, a2]) {
          t.like(await seatRow(app, seatId), {
            status: 'HELD',
            hold_order_id: first.orderId,
            owner_user_id: null,
            sold_order_id: null,
          });
        }
        // Expired seats count for no limit: the same user may hold two more under a limit of two.
        const more = await port.holdSeats({ ...reserve(first.userId, randomUUID(), [b1, b2]), holdLimit: 2 });
        t.is(more.seats.length, 2);
        t.deepEqual(await port.holdSeats(reserve(first.userId, randomUUID(), [b1, b2])), more, 'the live order');

        const second = await port.holdSeats({ ...reserve(randomUUID(), randomUUID(), [a2]), ttlSeconds: 60 });
        t.true(Date.parse(second.heldUntil) > Date.parse(first.heldUntil));
        await rejects(t, port.confirmOrder(sale), 'SEAT_NOT_HELD');
        t.like(await seatRow(app, a2), { status: 'HELD', hold_order_id: second.orderId });
        t.like(await seatRow(app, a1), { status: 'HELD', hold_order_id: first.orderId, owner_user_id: null });
        // The first order's release releases what it still marks, and nothing of the second order.
        t.deepEqual(await port.releaseOrder({ orderId: first.orderId }), { released: 1 });
        t.like(await seatRow(app, a2), { status: 'HELD', hold_order_id: second.orderId });
        t.deepEqual(await refusal(t, port.holdSeats(reserve(first.userId, first.orderId, [a1, a2]))), {
          code: 'SEAT_UNAVAILABLE',
          fields: ['seat_ids[1]'],
        });
        t.like(await seatRow(app, a1), { status: 'AVAILABLE', held_by_user_id: null });
        // The same reserve after its own hold ran out is a fresh hold of the same order.
        const again = await port.holdSeats({ ...reserve(first.userId, first.orderId, [a1]), ttlSeconds: 30 });
        clock.advance(30_000);
        const fresh = await port.holdSeats({ ...reserve(first.userId, first.orderId, [a1]), ttlSeconds: 30 });
        t.true(Date.parse(fresh.heldUntil) > Date.parse(again.heldUntil));
        t.like(await seatRow(app, a1), { hold_order_id: first.orderId, held_until: Date.parse(fresh.heldUntil) });
      },
    );

    test(name('setOwner moves a sold seat from its expected owner once per key'), async (t) => {
      const port = make(app);
      const e = await small();
      const [a1, a2, a3, b1] = e.seats.map((s) => s.seat_id);
      const { userId: seller, seat } = await sellSeat(port, a1);
      const buyer = randomUUID();
      const sale = `transfer:${randomUUID()}`;
      const there = { seatId: a1, expectedOwnerId: seller, newOwnerId: buyer, key: `${sale}:owner` };
      const moved = await port.setOwner(there);
      t.deepEqual(moved, { ...seat, ownerUserId: buyer });
      t.deepEqual(await port.setOwner(there), moved, 'a repeat of the key answers the first move');
      // Another key asking for what is already so is answered as it is.
      t.like(await port.setOwner({ ...there, key: `${sale}:again` }), { ownerUserId: buyer });
      await rejects(
        t,
        port.setOwner({ seatId: a1, expectedOwnerId: seller, newOwnerId: randomUUID(), key: randomUUID() }),
        'NOT_SEAT_OWNER',
      );
      await rejects(
        t,
        port.setOwner({ seatId: a1, expectedOwnerId: randomUUID(), newOwnerId: randomUUID(), key: randomUUID() }),
        'NOT_SEAT_OWNER',
      );
      t.deepEqual(
        (await port.listSeatsOwnedBy({ userId: buyer })).map((s) => s.seatId),
        [a1],
      );
      t.deepEqual(await port.listSeatsOwnedBy({ userId: seller }), []);
      // And back: a reversal is the same call the other way round, under its own key.
      const back = { seatId: a1, expectedOwnerId: buyer, newOwnerId: seller, key: `${sale}:back` };
      t.like(await port.setOwner(back), { ownerUserId: seller });
      // A late retry of the first move (its answer was lost, say) changes nothing now.
      t.deepEqual(await port.setOwner(there), moved, 'the late retry answers the first move');
      t.like(await seatRow(app, a1), { owner_user_id: seller });
      t.deepEqual(
        (await port.listSeatsOwnedBy({ userId: seller })).map((s) => s.seatId),
        [a1],
      );

      const anyone = { expectedOwnerId: randomUUID(), newOwnerId: randomUUID(), key: randomUUID() };
      await rejects(t, port.setOwner({ seatId: a2, ...anyone }), 'SEAT_UNAVAILABLE');
      const h = await holdOne(port, a3);
      await rejects(
        t,
        port.setOwner({ seatId: a3, expectedOwnerId: h.userId, newOwnerId: randomUUID(), key: randomUUID() }),
        'SEAT_UNAVAILABLE',
      );
      const used = await sellSeat(port, b1);
      await port.checkIn({ seatId: b1, expectedOwnerId: used.userId, staffId: randomUUID(), presentedHall: 'HALL-A' });
      await rejects(
        t,
        port.setOwner({ seatId: b1, expectedOwnerId: used.userId, newOwnerId: randomUUID(), key: randomUUID() }),
        'SEAT_UNAVAILABLE',
      );
      t.like(await seatRow(app, b1), { status: 'CHECKED_IN', owner_user_id: used.userId });
      await rejects(t, port.setOwner({ seatId: randomUUID(), ...anyone }), 'SEAT_NOT_FOUND');
    });
  }

  test(`[${kind}] the internal abandonOrder route answers malformed arguments with 400 VALIDATION_ERROR`, async (t) => {
    const e = await small();
    const seatId = e.seats[0].seat_id;
    const h = await holdOne(ADAPTERS.local(app), seatId);
    const headers = { 'x-service-token': app.kernel.config.serviceToken };
    const cases: [string, Record<string, unknown>, string][] = [
      ['order id not a UUID', { orderId: "' OR 1=1 --", seatIds: [seatId] }, 'orderId'],
      ['seat id not a UUID', { orderId: h.orderId, seatIds: [seatId, 'seat-1'] }, 'seatIds[1]'],
      ['no seats', { orderId: h.orderId, seatIds: [] }, 'seatIds'],
      [
        '101 seats',
        { orderId: h.orderId, seatIds: [seatId, ...Array.from({ length: 100 }, () => randomUUID())] },
        'seatIds',
      ],
    ];
    for (const [what, body, field] of cases) {
      const res = await app.request('POST', '/internal/event/abandonOrder', { headers, body });
      t.is(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
      t.is(res.body.error_code, 'VALIDATION_ERROR', what);
      const fields = (res.body.details ?? []).map((d: { field: string }) => d.field);
      t.true(fields.includes(field), `${what}: details name ${field}: ${JSON.stringify(res.body)}`);
    }
    t.like(await seatRow(app, seatId), { status: 'HELD', hold_order_id: h.orderId }, 'the hold is untouched');
  });
}
