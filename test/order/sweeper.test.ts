import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { createOrders } from '../../src/modules/order/orders.js';
import { DATABASES, sharedApp } from '../helpers/app.js';
import { until } from '../helpers/assert.js';
import { metric } from '../helpers/metrics.js';
import { orderPort, orderRow, placeOrder } from '../helpers/orders.js';

/**
 * Pending orders whose hold has ended become EXPIRED when the order sweeper passes. Two apps per
 * database, each on a clock the tests move instead of waiting out a hold: one whose sweeper
 * waits an hour, so that the tests run it by hand, and one whose sweeper runs every 200 ms.
 */

for (const kind of DATABASES) {
  const quietClock = manualClock();
  const sweepingClock = manualClock();
  const quiet = sharedApp(kind, { env: { SWEEP_INTERVAL_MS: '3600000' }, clock: quietClock });
  const sweeping = sharedApp(kind, { env: { SWEEP_INTERVAL_MS: '200' }, clock: sweepingClock });

  test.serial(`[${kind}] the sweeper ends pending orders past their hold as EXPIRED, and only those`, async (t) => {
    const port = orderPort(quiet);
    const expiring = await Promise.all([1, 2, 3].map(() => placeOrder(quiet, { ttlMs: 30_000 })));
    const live = await placeOrder(quiet, { ttlMs: 300_000 });
    const confirmed = await placeOrder(quiet, { ttlMs: 30_000 });
    await port.confirmOrder({ orderId: confirmed.orderId });
    const failed = await placeOrder(quiet, { ttlMs: 30_000 });
    await port.endOrder({ orderId: failed.orderId, status: 'FAILED' });
    const before = await metric(quiet, 'order_orders_expired_total');

    await quiet.kernel.jobs.run('order', 'order-sweeper');
    for (const o of expiring) t.like(await orderRow(quiet, o.orderId), { status: 'PENDING' }, 'none has ended yet');
    t.is(await metric(quiet, 'order_orders_expired_total'), before);

    quietClock.advance(30_000);
    await quiet.kernel.jobs.run('order', 'order-sweeper');
    const now = quietClock.now();
    for (const o of expiring) {
      const row = await orderRow(quiet, o.orderId);
      t.is(row?.status, 'EXPIRED');
      t.true((row?.updated_at ?? 0) >= now - 1000 && (row?.updated_at ?? 0) <= now, 'updated on the app clock');
      t.like(await port.getOrder({ orderId: o.orderId }), { status: 'EXPIRED', creditsCharged: 0, confirmedAt: null });
    }
    t.like(await orderRow(quiet, live.orderId), { status: 'PENDING' });
    t.like(await orderRow(quiet, confirmed.orderId), { status: 'CONFIRMED' });
    t.like(await orderRow(quiet, failed.orderId), { status: 'FAILED' });
    t.is(await metric(quiet, 'order_orders_expired_total'), before + 3);

    // More sweeps change nothing: not the rows, not their updated_at, not the counter.
    const snapshot = await Promise.all(expiring.map((o) => orderRow(quiet, o.orderId)));
    for (let i = 0; i < 3; i++) await quiet.kernel.jobs.run('order', 'order-sweeper');
    t.deepEqual(await Promise.all(expiring.map((o) => orderRow(quiet, o.orderId))), snapshot);
    t.is(await metric(quiet, 'order_orders_expired_total'), before + 3);

    // A swept order whose seats were sold after all is still confirmed (forward recovery).
    t.like(await port.confirmOrder({ orderId: expiring[0].orderId }), { status: 'CONFIRMED', creditsCharged: 22950 });
  });

  test.serial(`[${kind}] sweepers running at once end each expired order exactly once`, async (t) => {
    const db = quiet.kernel.databases.get('order')!;
    const expiring = await Promise.all(Array.from({ length: 20 }, () => placeOrder(quiet, { ttlMs: 30_000 })));
    const live = await Promise.all(Array.from({ length: 5 }, () => placeOrder(quiet, { ttlMs: 300_000 })));
    quietClock.advance(30_000);
    // Four sweepers, as four processes would run them, each its own instance on the database.
    const swept = await Promise.all(Array.from({ length: 4 }, () => createOrders(db, quietClock).sweep()));
    t.is(
      swept.reduce((a, b) => a + b, 0),
      20,
      `each expired order ended once: ${swept}`,
    );
    for (const o of expiring) t.like(await orderRow(quiet, o.orderId), { status: 'EXPIRED' });
    for (const o of live) t.like(await orderRow(quiet, o.orderId), { status: 'PENDING' });
    t.is(await createOrders(db, quietClock).sweep(), 0, 'a second sweep finds nothing');
  });

  test(`[${kind}] the scheduled sweeper ends expired orders by itself`, async (t) => {
    const before = await metric(sweeping, 'order_orders_expired_total');
    const expiring = await Promise.all([1, 2].map(() => placeOrder(sweeping, { ttlMs: 30_000 })));
    const live = await placeOrder(sweeping, { ttlMs: 3_600_000 });
    t.like(await orderRow(sweeping, expiring[0].orderId), { status: 'PENDING' });
    sweepingClock.advance(30_000);
    const ended = await until(async () => {
      const rows = await Promise.all(expiring.map((o) => orderRow(sweeping, o.orderId)));
      return rows.every((r) => r?.status === 'EXPIRED');
    });
    t.true(ended, 'the sweeper ended the expired orders');
    t.like(await orderRow(sweeping, live.orderId), { status: 'PENDING' });
    t.is(await metric(sweeping, 'order_orders_expired_total'), before + 2);
  });
}
