import type { EntityManager } from '@mikro-orm/knex';
import type { Clock } from '../../kernel/clock.js';
import { AppError } from '../../kernel/errors.js';
import type { Database } from '../../kernel/persistence.js';
import { isoDate } from '../../kernel/schemas.js';
import { Order } from './order.entities.js';
import type { OrderDto, OrderPort, OrderStatus } from './order.port.js';
import type { OrderRepository, OrderWithSeats } from './order.repository.js';

type Args<M extends keyof OrderPort> = Parameters<OrderPort[M]>[0];

/** An order joined to one of its seats, as the read statement answers. */
interface OrderSeatRow {
  id: string;
  user_id: string;
  event_id: string;
  status: OrderStatus;
  total: number | string;
  expires_at: unknown;
  confirmed_at: unknown;
  created_at: unknown;
  updated_at: unknown;
  seat_id: string | null;
  price: number | string | null;
}

/** The largest total an integer column holds on PostgreSQL. */
const MAX_TOTAL = 2_147_483_647;

/** What the order has charged: its total once it is paid for, refunded or not. */
const charged = (status: OrderStatus, total: number) => (status === 'CONFIRMED' || status === 'REFUNDED' ? total : 0);

/** An order read through the entities (the list routes, getOrders). */
export function toOrderDto({ order, seats }: OrderWithSeats): OrderDto {
  const status = order.status as OrderStatus;
  return {
    orderId: order.id,
    userId: order.userId,
    eventId: order.eventId,
    status,
    total: order.total,
    creditsCharged: charged(status, order.total),
    seats: seats.map((s) => ({ seatId: s.seatId, price: s.price })),
    expiresAt: isoDate(order.expiresAt),
    createdAt: isoDate(order.createdAt),
    confirmedAt: order.confirmedAt ? isoDate(order.confirmedAt) : null,
    updatedAt: isoDate(order.updatedAt),
  };
}

/** Whether a repeated create asks for the order that exists (its hold's end may have been recomputed). */
const sameOrder = (o: OrderDto, a: Args<'createOrder'>) =>
  o.userId === a.userId &&
  o.eventId === a.eventId &&
  o.seats.length === a.seats.length &&
  o.seats.every((s, i) => s.seatId === a.seats[i].seatId && s.price === a.seats[i].price);

/**
 * The order state machine: PENDING → CONFIRMED, or PENDING → EXPIRED | FAILED (and on to
 * CONFIRMED when the seats were sold after all). Every status change is one conditional UPDATE
 * keyed by the order id, so a repeat, or two processes at once, change it once.
 *
 * Create, read and confirm run once or twice per purchase, so they are raw SQL (ADR 6, measured
 * hot path). 3,000 sequential create + read + confirm through the in-process port, per purchase:
 * SQLite 7.7–9.2 ms on the ORM (create 3.8–4.5, read 1.6–1.8, confirm 2.3–2.8), 1.0 ms raw (0.73,
 * 0.12, 0.12–0.18); PostgreSQL 13.8–14.4 ms on the ORM (7.0–7.2, 2.4–2.6, 4.4–4.6), 4.1–4.3 ms raw
 * (2.2–2.5, 0.43–0.50, 1.35–1.46). getOrders and the list routes stay on the entities.
 */
export function createOrders(db: Database, clock: Clock) {
  const t = { orders: db.table('orders'), seats: db.table('order_seats') };
  const iso = (v: unknown) => isoDate(db.date(v));

  const INSERT = `insert into ${t.orders} (id, user_id, event_id, status, total, expires_at, confirmed_at, created_at, updated_at)
    values (:orderId, :userId, :eventId, 'PENDING', :total, :expiresAt, null, :now, :now)
    on conflict (id) do nothing returning id`;
  const READ = `select o.id, o.user_id, o.event_id, o.status, o.total, o.expires_at, o.confirmed_at, o.created_at,
      o.updated_at, s.seat_id, s.price
    from ${t.orders} o left join ${t.seats} s on s.order_id = o.id where o.id = ? order by s.position`;
  const CONFIRM_ORDER = `update ${t.orders} set status = 'CONFIRMED', confirmed_at = :now, updated_at = :now
    where id = :orderId and status in ('PENDING', 'EXPIRED', 'FAILED')`;
  const CONFIRM = `${CONFIRM_ORDER} returning id`;
  const END = `update ${t.orders} set status = :status, updated_at = :now
    where id = :orderId and status = 'PENDING' returning id`;
  const SWEEP = `update ${t.orders} set status = 'EXPIRED', updated_at = ?
    where status = 'PENDING' and expires_at <= ? returning id`;

  /**
   * PostgreSQL: the order and its seats in one statement (one round trip instead of a transaction's
   * four); the seats are inserted only when the order was. SQLite has no INSERT in a WITH, so there
   * the two inserts share a transaction.
   */
  const INSERT_WITH_SEATS = `with o as (${INSERT})
    insert into ${t.seats} (order_id, seat_id, position, price)
    select o.id, s.seat_id, s.position, s.price
    from o, unnest(:seatIds::uuid[], :positions::int[], :prices::int[]) as s (seat_id, position, price)
    returning order_id`;

  /** One statement per number of seats, so that each is prepared once. */
  const seatInserts = new Map<number, string>();
  const insertSeats = (count: number) => {
    let sql = seatInserts.get(count);
    if (!sql) {
      const rows = Array.from({ length: count }, (_, i) => `(:orderId, :seat${i}, :position${i}, :price${i})`);
      sql = `insert into ${t.seats} (order_id, seat_id, position, price) values ${rows.join(', ')}`;
      seatInserts.set(count, sql);
    }
    return sql;
  };

  // A fresh unit of work per call: a port call must never answer from an earlier call's identity map.
  const orders = () => (db.orm.em.fork() as EntityManager).getRepository<Order, OrderRepository>(Order);

  /**
   * PostgreSQL: the confirm and the read of the order it answers in one statement. The rows come
   * from the UPDATE's RETURNING (a WITH's main query would see the order as it was before).
   */
  const CONFIRM_AND_READ = `with o as (${CONFIRM_ORDER} returning *)
    select o.id, o.user_id, o.event_id, o.status, o.total, o.expires_at, o.confirmed_at, o.created_at,
      o.updated_at, s.seat_id, s.price
    from o left join ${t.seats} s on s.order_id = o.id order by s.position`;

  async function get(orderId: string): Promise<OrderDto> {
    return toDto(await db.all<OrderSeatRow>(READ, [orderId]));
  }

  function toDto(rows: OrderSeatRow[]): OrderDto {
    if (!rows.length) throw new AppError('ORDER_NOT_FOUND', 'No such order.');
    const [o] = rows;
    const total = Number(o.total);
    return {
      orderId: o.id,
      userId: o.user_id,
      eventId: o.event_id,
      status: o.status,
      total,
      creditsCharged: charged(o.status, total),
      seats: rows
        .filter((r) => r.seat_id !== null)
        .map((r) => ({ seatId: r.seat_id as string, price: Number(r.price) })),
      expiresAt: iso(o.expires_at),
      createdAt: iso(o.created_at),
      confirmedAt: o.confirmed_at === null || o.confirmed_at === undefined ? null : iso(o.confirmed_at),
      updatedAt: iso(o.updated_at),
    };
  }

  return {
    get,

    async getMany({ orderIds }: Args<'getOrders'>): Promise<OrderDto[]> {
      return (await orders().byIds([...new Set(orderIds)])).map(toOrderDto);
    },

    /** The order and its seats in one transaction; a repeat finds the order there and answers it. */
    async create(args: Args<'createOrder'>): Promise<OrderDto> {
      const total = args.seats.reduce((sum, s) => sum + s.price, 0);
      if (total > MAX_TOTAL) {
        throw new AppError('VALIDATION_ERROR', 'The order is invalid.', [
          { field: 'seats', message: `the seats' prices add up to more than ${MAX_TOTAL} cents` },
        ]);
      }
      const now = clock.now();
      const order = {
        orderId: args.orderId,
        userId: args.userId,
        eventId: args.eventId,
        total,
        expiresAt: db.time(Date.parse(args.expiresAt)),
        now: db.time(now),
      };
      let created: boolean;
      if (db.dialect === 'postgresql') {
        const rows = await db.all(INSERT_WITH_SEATS, {
          ...order,
          seatIds: args.seats.map((s) => s.seatId),
          positions: args.seats.map((_, i) => i),
          prices: args.seats.map((s) => s.price),
        });
        created = rows.length > 0;
      } else {
        const seatValues: Record<string, unknown> = { orderId: args.orderId };
        args.seats.forEach((s, i) => {
          seatValues[`seat${i}`] = s.seatId;
          seatValues[`position${i}`] = i;
          seatValues[`price${i}`] = s.price;
        });
        created = await db.tx(async (trx) => {
          const [row] = await db.all(INSERT, order, trx);
          if (row) await db.all(insertSeats(args.seats.length), seatValues, trx);
          return row !== undefined;
        });
      }
      if (created) {
        const at = isoDate(now);
        return {
          orderId: args.orderId,
          userId: args.userId,
          eventId: args.eventId,
          status: 'PENDING',
          total,
          creditsCharged: 0,
          seats: args.seats.map((s) => ({ seatId: s.seatId, price: s.price })),
          expiresAt: isoDate(args.expiresAt),
          createdAt: at,
          confirmedAt: null,
          updatedAt: at,
        };
      }
      const existing = await get(args.orderId);
      if (!sameOrder(existing, args)) {
        throw new AppError('VALIDATION_ERROR', 'This order id is taken by another order.', [
          { field: 'orderId', message: 'orderId names an order with other seats, user or event' },
        ]);
      }
      return existing;
    },

    /**
     * PENDING, EXPIRED or FAILED → CONFIRMED: the seats and the money are the truth (forward
     * recovery). `confirmed` says whether this call confirmed it (not a repeat).
     */
    async confirm({ orderId }: Args<'confirmOrder'>) {
      const binds = { now: db.time(clock.now()), orderId };
      if (db.dialect === 'postgresql') {
        const rows = await db.all<OrderSeatRow>(CONFIRM_AND_READ, binds);
        return rows.length ? { confirmed: true, order: toDto(rows) } : { confirmed: false, order: await get(orderId) };
      }
      const moved = await db.all(CONFIRM, binds);
      return { confirmed: moved.length > 0, order: await get(orderId) };
    },

    async end({ orderId, status }: Args<'endOrder'>): Promise<OrderDto> {
      await db.all(END, { status, now: db.time(clock.now()), orderId });
      return get(orderId);
    },

    /** Ends pending orders whose hold has passed as EXPIRED; safe with several sweepers at once. */
    async sweep(): Promise<number> {
      const now = db.time(clock.now());
      return (await db.all(SWEEP, [now, now])).length;
    },
  };
}

export type Orders = ReturnType<typeof createOrders>;
