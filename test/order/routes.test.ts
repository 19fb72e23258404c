import { randomUUID } from 'node:crypto';
import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import type { OrderDto } from '../../src/modules/order/index.js';
import { DATABASES } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import { orderPort, placeOrder } from '../helpers/orders.js';
import { newUser, sharedAppWithAdmin, type TestUser } from '../helpers/users.js';

/**
 * "My orders": each user sees their own orders and nobody else's, an admin included. The
 * sweeper is held off (one sweep an hour), so that an order reading as EXPIRED after its hold
 * does so before any sweep.
 */

const ORDER_KEYS = [
  'confirmed_at',
  'created_at',
  'credits_charged',
  'event_id',
  'expires_at',
  'order_id',
  'seat_id',
  'seat_ids',
  'status',
  'total',
];
const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

for (const kind of DATABASES) {
  // Holds end on a clock the tests move; the tests that move it run serially.
  const clock = manualClock();
  const { app, admin } = sharedAppWithAdmin(kind, { SWEEP_INTERVAL_MS: '3600000' }, clock);
  const name = (s: string) => `[${kind}] ${s}`;

  const list = (u: TestUser, query = '') => app.request('GET', `/api/orders${query}`, { token: u.token });
  const one = (u: TestUser, orderId: string) => app.request('GET', `/api/orders/${orderId}`, { token: u.token });

  test(name('GET /api/orders/:order_id shows the caller’s order in credits, its seats in reserve order'), async (t) => {
    const u = await newUser(app);
    const order = await placeOrder(app, { userId: u.userId, seatCount: 3 });
    const res = await one(u, order.orderId);
    t.is(res.status, 200, JSON.stringify(res.body));
    t.deepEqual(Object.keys(res.body.data).sort(), ORDER_KEYS);
    const seatIds = order.seats.map((s) => s.seatId);
    t.deepEqual(res.body.data, {
      order_id: order.orderId,
      seat_id: seatIds[0],
      seat_ids: seatIds,
      event_id: order.eventId,
      status: 'PENDING',
      total: 309.5,
      credits_charged: 0,
      created_at: order.createdAt,
      confirmed_at: null,
      expires_at: order.expiresAt,
    });
    t.regex(res.body.data.created_at, ISO_Z);
    t.regex(res.body.data.expires_at, ISO_Z);

    const confirmed = await orderPort(app).confirmOrder({ orderId: order.orderId });
    const after = await one(u, order.orderId);
    t.like(after.body.data, { status: 'CONFIRMED', total: 309.5, credits_charged: 309.5 });
    t.is(after.body.data.confirmed_at, confirmed.confirmedAt);
    t.regex(after.body.data.confirmed_at, ISO_Z);
  });

  test(name('someone else’s order, or an unknown one, is 404 ORDER_NOT_FOUND — for an admin too'), async (t) => {
    const [owner, other] = await Promise.all([newUser(app), newUser(app)]);
    const order = await placeOrder(app, { userId: owner.userId });
    const adminsOwn = await placeOrder(app, { userId: admin.userId });
    isError(t, await one(other, order.orderId), 404, 'ORDER_NOT_FOUND');
    isError(t, await one(admin, order.orderId), 404, 'ORDER_NOT_FOUND');
    isError(t, await one(owner, randomUUID()), 404, 'ORDER_NOT_FOUND');
    isError(t, await one(owner, adminsOwn.orderId), 404, 'ORDER_NOT_FOUND');
    t.is((await one(admin, adminsOwn.orderId)).status, 200, 'an admin sees their own');
    t.is((await one(owner, order.orderId)).status, 200);
    // The path's id is read case-insensitively, as every UUID is.
    t.is((await one(owner, order.orderId.toUpperCase())).status, 200);
  });

  test.serial(name('GET /api/orders lists only the caller’s orders, newest first, page by page'), async (t) => {
    const [u, other] = await Promise.all([newUser(app), newUser(app)]);
    const empty = await list(u);
    t.is(empty.status, 200);
    t.deepEqual(empty.body.data, []);
    t.deepEqual(empty.body.pagination, { page: 1, per_page: 20, total: 0, total_pages: 0 });

    const mine: OrderDto[] = [];
    for (let i = 0; i < 5; i++) {
      mine.push(await placeOrder(app, { userId: u.userId, seatCount: 1 + (i % 3), ttlMs: 3_600_000 }));
      await placeOrder(app, { userId: other.userId });
      // A second between orders, so that "newest first" has one answer.
      clock.advance(1000);
    }
    await orderPort(app).confirmOrder({ orderId: mine[1].orderId });
    const newest = [...mine].reverse().map((o) => o.orderId);

    const all = await list(u);
    t.deepEqual(
      all.body.data.map((o: { order_id: string }) => o.order_id),
      newest,
    );
    t.deepEqual(all.body.pagination, { page: 1, per_page: 20, total: 5, total_pages: 1 });
    for (const o of all.body.data) t.deepEqual(Object.keys(o).sort(), ORDER_KEYS);
    t.like(
      all.body.data.find((o: { order_id: string }) => o.order_id === mine[1].orderId),
      { status: 'CONFIRMED', total: 229.5, credits_charged: 229.5 },
    );
    const single = (await one(u, mine[2].orderId)).body.data;
    t.deepEqual(
      all.body.data.find((o: { order_id: string }) => o.order_id === mine[2].orderId),
      single,
      'the list shows an order as the order route does',
    );

    const pages = [];
    for (const page of [1, 2, 3]) {
      const res = await list(u, `?per_page=2&page=${page}`);
      t.is(res.status, 200);
      t.deepEqual(res.body.pagination, { page, per_page: 2, total: 5, total_pages: 3 });
      pages.push(...res.body.data.map((o: { order_id: string }) => o.order_id));
    }
    t.deepEqual(pages, newest);
    const past = await list(u, '?per_page=2&page=4');
    t.deepEqual(past.body.data, []);
    t.deepEqual(past.body.pagination, { page: 4, per_page: 2, total: 5, total_pages: 3 });

    const theirs = await list(other);
    t.is(theirs.body.pagination.total, 5);
    t.false(theirs.body.data.some((o: { order_id: string }) => newest.includes(o.order_id)));
  });

  test.serial(name('a PENDING order whose hold has ended reads as EXPIRED before any sweep'), async (t) => {
    const u = await newUser(app);
    const order = await placeOrder(app, { userId: u.userId, ttlMs: 30_000 });
    t.is((await one(u, order.orderId)).body.data.status, 'PENDING');
    clock.advance(30_000);
    t.like((await one(u, order.orderId)).body.data, { status: 'EXPIRED', credits_charged: 0 });
    t.is((await list(u)).body.data[0].status, 'EXPIRED');
    // The row itself waits for the sweeper.
    t.is((await orderPort(app).getOrder({ orderId: order.orderId })).status, 'PENDING');
    // Paid for after all, it reads as what it is.
    await orderPort(app).confirmOrder({ orderId: order.orderId });
    t.like((await one(u, order.orderId)).body.data, { status: 'CONFIRMED', credits_charged: 229.5 });
  });

  test(
    name('bad input: a malformed order id is 400 INVALID_UUID, an unknown query field 400, no token 401'),
    async (t) => {
      const u = await newUser(app);
      const order = await placeOrder(app, { userId: u.userId });
      for (const bad of ['not-a-uuid', `${order.orderId}0`, order.orderId.replace(/-/g, '')]) {
        isError(t, await one(u, bad), 400, 'INVALID_UUID');
      }
      isError(t, await list(u, '?status=PENDING'), 400, 'VALIDATION_ERROR');
      isError(t, await list(u, `?user_id=${randomUUID()}`), 400, 'VALIDATION_ERROR');
      isError(
        t,
        await app.request('GET', `/api/orders/${order.orderId}?expand=seats`, { token: u.token }),
        400,
        'VALIDATION_ERROR',
      );
      for (const q of ['?per_page=0', '?per_page=101', '?page=0', '?page=x']) {
        isError(t, await list(u, q), 400, 'VALIDATION_ERROR');
      }
      isError(t, await app.request('GET', '/api/orders'), 401, 'UNAUTHORIZED');
      isError(t, await app.request('GET', `/api/orders/${order.orderId}`), 401, 'UNAUTHORIZED');
    },
  );
}
