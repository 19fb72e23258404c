import { randomUUID } from 'node:crypto';
import { type OrderDto, type OrderPort, orderPortDefinition } from '../../src/modules/order/index.js';
import type { TestApp } from './app.js';
import { rowCounts } from './assert.js';
import { adaptersOf } from './ports.js';

export type NewOrder = Parameters<OrderPort['createOrder']>[0];

/** The order port's two adapters: in-process, and HTTP against the app's internal routes. */
export const ORDER_ADAPTERS = adaptersOf('order', orderPortDefinition);

export const orderPort = ORDER_ADAPTERS.local;

/**
 * The arguments of a fresh order: new ids, `seatCount` seats priced 149.50, 80.00, 80.00, …, a hold
 * that ends `ttlMs` after `now` (the app's clock, when the test moves one).
 */
export function orderArgs(
  options: { seatCount?: number; ttlMs?: number; now?: number } & Partial<NewOrder> = {},
): NewOrder {
  const { seatCount = 2, ttlMs = 300_000, now = Date.now(), ...given } = options;
  return {
    orderId: randomUUID(),
    userId: randomUUID(),
    eventId: randomUUID(),
    seats: Array.from({ length: seatCount }, (_, i) => ({ seatId: randomUUID(), price: i === 0 ? 14950 : 8000 })),
    expiresAt: new Date(now + ttlMs).toISOString(),
    ...given,
  };
}

/** Creates an order through the in-process port. */
export const placeOrder = (app: TestApp, options: Parameters<typeof orderArgs>[0] = {}): Promise<OrderDto> =>
  orderPort(app).createOrder(orderArgs({ now: app.kernel.clock.now(), ...options }));

/** Raw SQL on the order module's database (`?` placeholders); `t` names a table. */
export function orderSql<T = Record<string, unknown>>(
  app: TestApp,
  sql: (t: (name: string) => string) => string,
  params: unknown[] = [],
) {
  const db = app.kernel.databases.get('order')!;
  return db.all<T>(
    sql((name) => db.table(name)),
    params,
  );
}

/** An order's row as stored (not as readers see it), with its timestamps as epoch milliseconds. */
export async function orderRow(app: TestApp, orderId: string) {
  const db = app.kernel.databases.get('order')!;
  const [row] = await db.all<Record<string, unknown>>(
    `select id, user_id, event_id, status, total, expires_at, confirmed_at, created_at, updated_at
     from ${db.table('orders')} where id = ?`,
    [orderId],
  );
  if (!row) return undefined;
  const ms = (v: unknown) => (v === null || v === undefined ? null : db.date(v).getTime());
  return {
    ...row,
    total: Number(row.total),
    expires_at: ms(row.expires_at),
    confirmed_at: ms(row.confirmed_at),
    created_at: ms(row.created_at),
    updated_at: ms(row.updated_at),
  } as {
    id: string;
    user_id: string;
    event_id: string;
    status: string;
    total: number;
    expires_at: number;
    confirmed_at: number | null;
    created_at: number;
    updated_at: number;
  };
}

/** Sets an order's status with a raw UPDATE, for states no port method reaches yet (REFUNDED). */
export const setStatus = (app: TestApp, orderId: string, status: string) =>
  orderSql(app, (t) => `update ${t('orders')} set status = ? where id = ?`, [status, orderId]);

/** An order's seat rows as stored: [seat_id, position, price], in position order. */
export async function seatsOf(app: TestApp, orderId: string) {
  const rows = await orderSql(
    app,
    (t) => `select seat_id, position, price from ${t('order_seats')} where order_id = ? order by position`,
    [orderId],
  );
  return rows.map((r) => [r.seat_id, Number(r.position), Number(r.price)]);
}

/** Whether any row of the order module names one of these seats. */
export async function seatsNamed(app: TestApp, seatIds: string[]) {
  const marks = seatIds.map(() => '?').join(', ');
  const rows = await orderSql(
    app,
    (t) => `select seat_id from ${t('order_seats')} where seat_id in (${marks})`,
    seatIds,
  );
  return rows.length;
}

/** Rows of the order module's tables, to show that a refused request wrote nothing. */
export const orderRowCounts = (app: TestApp) =>
  rowCounts(app, 'order', { orders: 'orders', seats: 'order_seats', transfers: 'transfers' });
