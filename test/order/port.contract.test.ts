import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { DATABASES, sharedApp } from '../helpers/app.js';
import { rejects } from '../helpers/assert.js';
import { metric } from '../helpers/metrics.js';
import { ORDER_ADAPTERS, orderArgs, orderRow, seatsNamed, seatsOf, setStatus } from '../helpers/orders.js';

/**
 * One contract for the order port, run against the in-process adapter and the HTTP adapter on
 * every database: every method, its repeats and its refusals. The sweeper is held off, so a
 * PENDING order past its hold stays PENDING in its row unless a test ends it.
 */

const ORDER_KEYS = [
  'confirmedAt',
  'createdAt',
  'creditsCharged',
  'eventId',
  'expiresAt',
  'orderId',
  'seats',
  'status',
  'total',
  'updatedAt',
  'userId',
];
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

for (const kind of DATABASES) {
  // Holds end on a clock the tests move; the tests that move it run serially.
  const clock = manualClock();
  const app = sharedApp(kind, { env: { SWEEP_INTERVAL_MS: '3600000' }, clock });
  const args = (options: Parameters<typeof orderArgs>[0] = {}) => orderArgs({ now: clock.now(), ...options });

  for (const [adapter, make] of Object.entries(ORDER_ADAPTERS)) {
    const name = (s: string) => `[${kind}/${adapter}] ${s}`;

    test(
      name('createOrder makes a PENDING order of the seats in the order given; getOrder reads it back'),
      async (t) => {
        const port = make(app);
        const a = args({ seatCount: 3 });
        // Not in id order, so that the answer's order can only come from the request.
        a.seats = [a.seats[1], a.seats[0], a.seats[2]];
        const before = clock.now();
        const order = await port.createOrder(a);
        t.deepEqual(Object.keys(order).sort(), ORDER_KEYS);
        t.deepEqual(order, {
          orderId: a.orderId,
          userId: a.userId,
          eventId: a.eventId,
          status: 'PENDING',
          total: 8000 + 14950 + 8000,
          creditsCharged: 0,
          seats: a.seats,
          expiresAt: a.expiresAt,
          createdAt: order.createdAt,
          confirmedAt: null,
          updatedAt: order.createdAt,
        });
        t.regex(order.createdAt, ISO_Z);
        const created = Date.parse(order.createdAt);
        t.true(created >= before - 1 && created <= clock.now(), 'created on the app clock');
        t.deepEqual(await port.getOrder({ orderId: a.orderId }), order);
        t.like(await orderRow(app, a.orderId), {
          status: 'PENDING',
          total: 30950,
          user_id: a.userId,
          confirmed_at: null,
        });
        t.deepEqual(
          await seatsOf(app, a.orderId),
          a.seats.map((s, i) => [s.seatId, i, s.price]),
        );
      },
    );

    test(name('a repeated createOrder answers the existing order and writes nothing'), async (t) => {
      const port = make(app);
      const a = args();
      const first = await port.createOrder(a);
      await sleep(20);
      const row = await orderRow(app, a.orderId);
      t.deepEqual(await port.createOrder(a), first, 'the same order, its timestamps unchanged');
      // A retried reserve may compute its hold's end again: the order keeps its own.
      const later = new Date(Date.parse(a.expiresAt) + 60_000).toISOString();
      t.deepEqual(await port.createOrder({ ...a, expiresAt: later }), first);
      t.deepEqual(await orderRow(app, a.orderId), row);
      t.is((await seatsOf(app, a.orderId)).length, 2);
    });

    test(name('repeats of createOrder at the same moment make one order'), async (t) => {
      const port = make(app);
      const a = args({ seatCount: 4 });
      const answers = await Promise.all(Array.from({ length: 6 }, () => port.createOrder(a)));
      for (const answer of answers) t.deepEqual(answer, answers[0]);
      t.deepEqual(
        await seatsOf(app, a.orderId),
        a.seats.map((s, i) => [s.seatId, i, s.price]),
      );
    });

    test(name('an order id reused for other content is refused, and the order stays as it was'), async (t) => {
      const port = make(app);
      const a = args();
      const first = await port.createOrder(a);
      const other = args();
      const variants = [
        { ...a, userId: other.userId },
        { ...a, eventId: other.eventId },
        { ...a, seats: other.seats },
        { ...a, seats: [a.seats[1], a.seats[0]] },
        { ...a, seats: [a.seats[0]] },
        { ...a, seats: [a.seats[0], { ...a.seats[1], price: a.seats[1].price + 1 }] },
      ];
      const row = await orderRow(app, a.orderId);
      for (const v of variants) await rejects(t, port.createOrder(v), 'VALIDATION_ERROR');
      t.deepEqual(await port.getOrder({ orderId: a.orderId }), first);
      t.deepEqual(await orderRow(app, a.orderId), row);
      t.deepEqual(
        await seatsOf(app, a.orderId),
        a.seats.map((s, i) => [s.seatId, i, s.price]),
      );
      t.is(
        await seatsNamed(
          app,
          other.seats.map((s) => s.seatId),
        ),
        0,
      );
    });

    test(name('createOrder refuses malformed arguments and a total past what is stored'), async (t) => {
      const port = make(app);
      const a = args();
      const big = args({ seatCount: 2 }).seats.map((s) => ({ ...s, price: 2_000_000_000 }));
      const bad = [
        { ...a, orderId: 'not-a-uuid' },
        { ...a, userId: '' },
        { ...a, seats: [] },
        { ...a, seats: [a.seats[0], a.seats[0]] },
        { ...a, seats: [{ seatId: a.seats[0].seatId, price: -1 }] },
        { ...a, seats: [{ seatId: a.seats[0].seatId, price: 1.5 }] },
        { ...a, expiresAt: 'tomorrow' },
        // Each price is allowed; their sum does not fit an integer column.
        { ...a, seats: big },
      ];
      for (const b of bad) await rejects(t, port.createOrder(b), 'VALIDATION_ERROR');
      t.is(await orderRow(app, a.orderId), undefined);
      t.is(
        await seatsNamed(
          app,
          [...a.seats, ...big].map((s) => s.seatId),
        ),
        0,
      );
      await rejects(t, port.getOrder({ orderId: a.orderId }), 'ORDER_NOT_FOUND');
    });

    test(name('getOrder, confirmOrder and endOrder answer ORDER_NOT_FOUND for an unknown order'), async (t) => {
      const port = make(app);
      const orderId = randomUUID();
      await rejects(t, port.getOrder({ orderId }), 'ORDER_NOT_FOUND');
      await rejects(t, port.confirmOrder({ orderId }), 'ORDER_NOT_FOUND');
      await rejects(t, port.endOrder({ orderId, status: 'FAILED' }), 'ORDER_NOT_FOUND');
      t.is(await orderRow(app, orderId), undefined);
    });

    test(name('getOrders answers the orders among the ids and leaves unknown ids out'), async (t) => {
      const port = make(app);
      const x = await port.createOrder(args({ seatCount: 1 }));
      const y = await port.createOrder(args({ seatCount: 3 }));
      const got = await port.getOrders({ orderIds: [y.orderId, randomUUID(), x.orderId, y.orderId] });
      t.deepEqual(
        [...got].sort((a, b) => a.orderId.localeCompare(b.orderId)),
        [x, y].sort((a, b) => a.orderId.localeCompare(b.orderId)),
      );
      t.deepEqual(await port.getOrders({ orderIds: [] }), []);
      t.deepEqual(await port.getOrders({ orderIds: [randomUUID()] }), []);
      await rejects(t, port.getOrders({ orderIds: ['nope'] }), 'VALIDATION_ERROR');
    });

    test(
      name('confirmOrder moves PENDING to CONFIRMED once: charged, confirmedAt set, a repeat answers it'),
      async (t) => {
        const port = make(app);
        const a = args();
        const created = await port.createOrder(a);
        const confirmed = await port.confirmOrder({ orderId: a.orderId });
        t.like(confirmed, { status: 'CONFIRMED', total: 22950, creditsCharged: 22950, createdAt: created.createdAt });
        t.regex(confirmed.confirmedAt ?? '', ISO_Z);
        t.is(confirmed.updatedAt, confirmed.confirmedAt ?? 'unset');
        t.deepEqual(confirmed.seats, created.seats);
        await sleep(20);
        t.deepEqual(await port.confirmOrder({ orderId: a.orderId }), confirmed, 'a repeat changes nothing');
        t.deepEqual(await port.getOrder({ orderId: a.orderId }), confirmed);
        // Nothing ends a confirmed order.
        t.deepEqual(await port.endOrder({ orderId: a.orderId, status: 'EXPIRED' }), confirmed);
        t.deepEqual(await port.endOrder({ orderId: a.orderId, status: 'FAILED' }), confirmed);
      },
    );

    test(name('confirmOrder recovers an EXPIRED or FAILED order: its seats were sold after all'), async (t) => {
      const port = make(app);
      for (const status of ['EXPIRED', 'FAILED'] as const) {
        const a = args();
        await port.createOrder(a);
        t.like(await port.endOrder({ orderId: a.orderId, status }), { status, creditsCharged: 0, confirmedAt: null });
        const confirmed = await port.confirmOrder({ orderId: a.orderId });
        t.like(confirmed, { status: 'CONFIRMED', creditsCharged: 22950 });
        t.truthy(confirmed.confirmedAt);
      }
    });

    test(name('a REFUNDED order stays REFUNDED through confirm and end, and shows what it charged'), async (t) => {
      const port = make(app);
      const a = args();
      await port.createOrder(a);
      const confirmed = await port.confirmOrder({ orderId: a.orderId });
      await setStatus(app, a.orderId, 'REFUNDED');
      const refunded = await port.getOrder({ orderId: a.orderId });
      t.like(refunded, { status: 'REFUNDED', creditsCharged: 22950, confirmedAt: confirmed.confirmedAt });
      t.deepEqual(await port.confirmOrder({ orderId: a.orderId }), refunded);
      t.deepEqual(await port.endOrder({ orderId: a.orderId, status: 'FAILED' }), refunded);
    });

    test(name('endOrder ends only a PENDING order; a repeat, or another end, answers the first'), async (t) => {
      const port = make(app);
      const a = args();
      await port.createOrder(a);
      const ended = await port.endOrder({ orderId: a.orderId, status: 'FAILED' });
      t.like(ended, { status: 'FAILED', creditsCharged: 0, confirmedAt: null });
      await sleep(20);
      t.deepEqual(await port.endOrder({ orderId: a.orderId, status: 'FAILED' }), ended);
      t.deepEqual(await port.endOrder({ orderId: a.orderId, status: 'EXPIRED' }), ended);
      t.like(await orderRow(app, a.orderId), { status: 'FAILED', updated_at: Date.parse(ended.updatedAt) });
      await rejects(t, port.endOrder({ orderId: a.orderId, status: 'CONFIRMED' as 'FAILED' }), 'VALIDATION_ERROR');
      await rejects(t, port.endOrder({ orderId: a.orderId, status: 'PENDING' as 'FAILED' }), 'VALIDATION_ERROR');
    });

    test.serial(
      name('a PENDING order past its hold is still confirmed (forward recovery) and still ended'),
      async (t) => {
        const port = make(app);
        const [x, y] = [args({ ttlMs: 1000 }), args({ ttlMs: 1000 })];
        await port.createOrder(x);
        await port.createOrder(y);
        clock.advance(2000);
        t.like(await port.getOrder({ orderId: x.orderId }), { status: 'PENDING', expiresAt: x.expiresAt });
        t.like(await port.confirmOrder({ orderId: x.orderId }), { status: 'CONFIRMED' });
        t.like(await port.endOrder({ orderId: y.orderId, status: 'EXPIRED' }), { status: 'EXPIRED' });
      },
    );

    test.serial(name('confirmations at the same moment confirm once: one confirmedAt, one count'), async (t) => {
      const port = make(app);
      const a = args();
      await port.createOrder(a);
      const before = await metric(app, 'order_orders_confirmed_total');
      const answers = await Promise.all(Array.from({ length: 6 }, () => port.confirmOrder({ orderId: a.orderId })));
      for (const answer of answers) t.deepEqual(answer, answers[0]);
      t.is(answers[0].status, 'CONFIRMED');
      await port.confirmOrder({ orderId: a.orderId });
      t.is(await metric(app, 'order_orders_confirmed_total'), before + 1);
    });
  }
}
