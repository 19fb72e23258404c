import type { Clock } from '../../kernel/clock.js';
import { AppError } from '../../kernel/errors.js';
import type { Database } from '../../kernel/persistence.js';
import { createApiRouter } from '../../kernel/routing.js';
import { credits } from '../../kernel/schemas.js';
import { Order } from './order.entities.js';
import { liveStatus, type OrderDto, type TransferDto } from './order.port.js';
import type { OrderRepository } from './order.repository.js';
import * as s from './order.schemas.js';
import { toOrderDto } from './orders.js';
import type { Transfers } from './transfers.js';

/**
 * An order as its owner sees it. A PENDING order past its hold reads as EXPIRED at once, as a
 * seat past its hold reads as AVAILABLE, whether or not the sweeper has passed.
 */
function orderView(o: OrderDto, now: number) {
  const seatIds = o.seats.map((seat) => seat.seatId);
  return {
    order_id: o.orderId,
    seat_id: seatIds[0],
    seat_ids: seatIds,
    event_id: o.eventId,
    status: liveStatus(o, now),
    total: credits(o.total),
    credits_charged: credits(o.creditsCharged),
    created_at: o.createdAt,
    confirmed_at: o.confirmedAt,
    expires_at: o.expiresAt,
  };
}

/** The caller's own orders; anyone else's, an admin's caller included, is not found. */
export function orderRoutes(db: Database, clock: Clock) {
  const api = createApiRouter('order', 'Orders');
  const orders = () => db.em.getRepository<Order, OrderRepository>(Order);

  api.route(
    'get',
    '/api/orders',
    { summary: 'The caller’s orders, newest first', access: 'user', paginated: true, response: s.orderView },
    async ({ principal, page }) => {
      const { items, total } = await orders().forUser(principal.userId, page.offset, page.perPage);
      const now = clock.now();
      return { items: items.map((o) => orderView(toOrderDto(o), now)), total };
    },
  );

  api.route(
    'get',
    '/api/orders/:order_id',
    {
      summary: 'One of the caller’s orders',
      description: 'Someone else’s order answers 404 ORDER_NOT_FOUND, for admins too.',
      access: 'user',
      params: s.orderIdParams,
      response: s.orderView,
      errors: ['INVALID_UUID', 'ORDER_NOT_FOUND'],
    },
    async ({ params, principal }) =>
      orderView(toOrderDto(await orders().getOwn(params.order_id, principal.userId)), clock.now()),
  );

  return api;
}

/** A transfer as its parties and admins see it; amounts in credits. */
export function transferView(t: TransferDto) {
  return {
    transfer_id: t.transferId,
    seat_id: t.seatId,
    order_id: t.orderId,
    seller_user_id: t.sellerUserId,
    buyer_user_id: t.buyerUserId,
    credits_amount: credits(t.creditsAmount),
    status: t.status,
    initiated_by: t.initiatedBy,
    dispute_reason: t.disputeReason,
    frozen_credits: credits(t.frozenAmount ?? 0),
    expires_at: t.expiresAt,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
    completed_at: t.completedAt,
  };
}

/** A transfer, for its two parties and for admins; to anyone else it does not exist. */
export function transferRoutes(transfers: Transfers) {
  const api = createApiRouter('order', 'Transfers');

  api.route(
    'get',
    '/api/transfers/:transfer_id',
    {
      summary: 'One transfer, for its seller, its buyer or an admin',
      description: 'Anyone else gets 404 TRANSFER_NOT_FOUND. A transfer whose codes ran out unconfirmed reads FAILED.',
      access: 'user',
      params: s.transferIdParams,
      response: s.transferView,
      errors: ['INVALID_UUID', 'TRANSFER_NOT_FOUND'],
    },
    async ({ params, principal }) => {
      const found = await transfers.get(params.transfer_id);
      const party = found.sellerUserId === principal.userId || found.buyerUserId === principal.userId;
      if (!party && principal.role !== 'admin') throw new AppError('TRANSFER_NOT_FOUND', 'No such transfer.');
      return transferView(found);
    },
  );

  return api;
}
