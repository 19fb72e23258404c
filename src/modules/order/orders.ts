import { UniqueConstraintViolationException } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/knex';
import type { Clock } from '../../kernel/clock.js';
import { AppError } from '../../kernel/errors.js';
import type { Database } from '../../kernel/persistence.js';
import { isoDate } from '../../kernel/schemas.js';
import { Order, OrderSeat } from './order.entities.js';
import type { OrderDto, OrderPort, OrderStatus } from './order.port.js';
import type { OrderRepository, OrderWithSeats } from './order.repository.js';

type Args<M extends keyof OrderPort> = Parameters<OrderPort[M]>[0];

/** The largest total an integer column holds on PostgreSQL. */
const MAX_TOTAL = 2_147_483_647;
/** The statuses a confirm moves on: the seats and the money are the truth (forward recovery). */
const CONFIRMABLE: OrderStatus[] = ['PENDING', 'EXPIRED', 'FAILED'];

/** What the order has charged: its total once it is paid for, refunded or not. */
const charged = (status: OrderStatus, total: number) => (status === 'CONFIRMED' || status === 'REFUNDED' ? total : 0);

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
 */
export function createOrders(db: Database, clock: Clock) {
  // A fresh unit of work per call: a port call must never answer from an earlier call's identity map.
  const em = () => db.orm.em.fork() as EntityManager;
  const repo = (m: EntityManager) => m.getRepository<Order, OrderRepository>(Order);

  async function get(orderId: string): Promise<OrderDto> {
    const [found] = await repo(em()).byIds([orderId]);
    if (!found) throw new AppError('ORDER_NOT_FOUND', 'No such order.');
    return toOrderDto(found);
  }

  /** Moves the order to `to` if its status is one of `from`; whether it did, and the order as it now is. */
  async function move(orderId: string, from: OrderStatus[], to: Partial<Order>) {
    const changed = await em().nativeUpdate(Order, { id: orderId, status: { $in: from } }, to);
    return { changed: changed > 0, order: await get(orderId) };
  }

  return {
    get,

    async getMany({ orderIds }: Args<'getOrders'>): Promise<OrderDto[]> {
      return (await repo(em()).byIds([...new Set(orderIds)])).map(toOrderDto);
    },

    async create(args: Args<'createOrder'>): Promise<OrderDto> {
      const total = args.seats.reduce((sum, s) => sum + s.price, 0);
      if (total > MAX_TOTAL) {
        throw new AppError('VALIDATION_ERROR', 'The order is invalid.', [
          { field: 'seats', message: `the seats' prices add up to more than ${MAX_TOTAL} cents` },
        ]);
      }
      const now = new Date(clock.now());
      try {
        const created = await em().transactional(async (tx) => {
          if (await tx.findOne(Order, { id: args.orderId })) return false;
          tx.create(Order, {
            id: args.orderId,
            userId: args.userId,
            eventId: args.eventId,
            status: 'PENDING',
            total,
            expiresAt: new Date(args.expiresAt),
            confirmedAt: null,
            createdAt: now,
            updatedAt: now,
          });
          args.seats.forEach((s, position) => {
            tx.create(OrderSeat, { orderId: args.orderId, seatId: s.seatId, position, price: s.price });
          });
          return true;
        });
        if (created) return await get(args.orderId);
      } catch (err) {
        // Another create of the same id committed first: answer with its order below.
        if (!(err instanceof UniqueConstraintViolationException)) throw err;
      }
      const existing = await get(args.orderId);
      if (!sameOrder(existing, args)) {
        throw new AppError('VALIDATION_ERROR', 'This order id is taken by another order.', [
          { field: 'orderId', message: 'orderId names an order with other seats, user or event' },
        ]);
      }
      return existing;
    },

    /** `confirmed` says whether this call confirmed it (not a repeat). */
    async confirm({ orderId }: Args<'confirmOrder'>) {
      const now = new Date(clock.now());
      const { changed, order } = await move(orderId, CONFIRMABLE, {
        status: 'CONFIRMED',
        confirmedAt: now,
        updatedAt: now,
      });
      return { confirmed: changed, order };
    },

    async end({ orderId, status }: Args<'endOrder'>): Promise<OrderDto> {
      return (await move(orderId, ['PENDING'], { status, updatedAt: new Date(clock.now()) })).order;
    },

    /** Ends pending orders whose hold has passed as EXPIRED; safe with several sweepers at once. */
    async sweep(): Promise<number> {
      const t = db.time(clock.now());
      const rows = await db.all(
        `update ${db.table('orders')} set status = 'EXPIRED', updated_at = ? where status = 'PENDING' and expires_at <= ? returning id`,
        [t, t],
      );
      return rows.length;
    },
  };
}

export type Orders = ReturnType<typeof createOrders>;
