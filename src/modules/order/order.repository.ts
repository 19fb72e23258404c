import { EntityRepository } from '@mikro-orm/knex';
import { AppError } from '../../kernel/errors.js';
import { type Order, OrderSeat } from './order.entities.js';

/** An order with its seats in the order the reserve named them. */
export interface OrderWithSeats {
  order: Order;
  seats: OrderSeat[];
}

/** Orders as their owners list and read them; the purchase path's writes are in orders.ts. */
export class OrderRepository extends EntityRepository<Order> {
  /** The user's orders, newest first. */
  async forUser(userId: string, offset: number, limit: number) {
    const [orders, total] = await this.findAndCount(
      { userId },
      { orderBy: { createdAt: 'desc', id: 'desc' }, offset, limit },
    );
    return { items: await this.withSeats(orders), total };
  }

  /** The user's own order; anyone else's is as good as absent. */
  async getOwn(orderId: string, userId: string): Promise<OrderWithSeats> {
    const order = await this.findOneOrFail(
      { id: orderId, userId },
      { failHandler: () => new AppError('ORDER_NOT_FOUND', 'No such order.') },
    );
    const [found] = await this.withSeats([order]);
    return found;
  }

  /** The orders among these ids, with their seats. */
  async byIds(ids: string[]) {
    return ids.length ? this.withSeats(await this.find({ id: { $in: ids } })) : [];
  }

  /** Seats of all the orders in one query. */
  async withSeats(orders: Order[]): Promise<OrderWithSeats[]> {
    if (!orders.length) return [];
    const seats = await this.em.find(
      OrderSeat,
      { orderId: { $in: orders.map((o) => o.id) } },
      { orderBy: { orderId: 'asc', position: 'asc' } },
    );
    const byOrder = new Map<string, OrderSeat[]>();
    for (const seat of seats) byOrder.set(seat.orderId, [...(byOrder.get(seat.orderId) ?? []), seat]);
    return orders.map((order) => ({ order, seats: byOrder.get(order.id) ?? [] }));
  }
}
