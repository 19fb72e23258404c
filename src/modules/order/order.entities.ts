import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { OrderRepository } from './order.repository.js';

export const ORDER_STATUSES = ['PENDING', 'CONFIRMED', 'EXPIRED', 'FAILED', 'REFUNDED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export const TRANSFER_STATUSES = ['INITIATED', 'PENDING_OTP', 'COMPLETED', 'DISPUTED', 'REVERSED', 'FAILED'] as const;
export type TransferStatus = (typeof TRANSFER_STATUSES)[number];
export const TRANSFER_INITIATORS = ['SELLER', 'BUYER'] as const;

/** An order of one or more seats of one event; its seats are in `order_seats`. */
export const Order = defineEntity({
  name: 'Order',
  tableName: 'orders',
  repository: () => OrderRepository,
  indexes: [
    // "My orders" reads a user's orders newest first.
    { name: 'orders_user_created_idx', properties: ['userId', 'createdAt'] },
    // The sweeper looks only at pending orders by expiry.
    {
      name: 'orders_pending_expires_idx',
      expression: (table, columns, name) =>
        `create index ${name} on ${table} (${columns.expiresAt}) where ${columns.status} = 'PENDING'`,
    },
  ],
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    eventId: p.uuid(),
    status: p.enum(ORDER_STATUSES as unknown as string[]),
    /** Sum of the seats' prices, in cents. */
    total: p.integer(),
    expiresAt: p.datetime(),
    confirmedAt: p.datetime().nullable(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
});
export type Order = InferEntity<typeof Order>;

/** A seat of an order, at the place the reserve named it, with its price in cents. */
export const OrderSeat = defineEntity({
  name: 'OrderSeat',
  tableName: 'order_seats',
  // Which orders named a seat (a ticket's history, a transfer's order).
  indexes: [{ name: 'order_seats_seat_idx', properties: ['seatId'] }],
  properties: {
    // No index of its own: the primary key starts with it.
    orderId: () =>
      p
        .manyToOne(Order)
        .mapToPk()
        .primary()
        .fieldName('order_id')
        .updateRule('no action')
        .deleteRule('no action')
        .index(false),
    seatId: p.uuid().primary(),
    position: p.integer(),
    price: p.integer(),
  },
});
export type OrderSeat = InferEntity<typeof OrderSeat>;

/** A resale of one seat between two users (transfers.ts; the flows are the orchestrator's). */
export const Transfer = defineEntity({
  name: 'Transfer',
  tableName: 'transfers',
  uniques: [
    // At most one transfer of a seat under way at a time; the database refuses a second.
    {
      name: 'transfers_active_seat_uq',
      expression: (table, columns, name) =>
        `create unique index ${name} on ${table} (${columns.seatId}) where ${columns.status} in ('INITIATED', 'PENDING_OTP')`,
    },
  ],
  properties: {
    id: p.uuid().primary(),
    seatId: p.uuid(),
    /** The order that sold the seat, when known. */
    orderId: p.uuid().nullable(),
    sellerUserId: p.uuid(),
    buyerUserId: p.uuid(),
    /** In cents. */
    creditsAmount: p.integer(),
    status: p.enum(TRANSFER_STATUSES as unknown as string[]),
    initiatedBy: p.enum(TRANSFER_INITIATORS as unknown as string[]),
    disputeReason: p.string().length(500).nullable(),
    /** What a dispute froze of the seller's credits, in cents. */
    frozenAmount: p.integer().nullable(),
    /** When a transfer under way stops being confirmable (its codes run out); null once confirming. */
    expiresAt: p.datetime().nullable(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
    completedAt: p.datetime().nullable(),
  },
});
export type Transfer = InferEntity<typeof Transfer>;

export const orderEntities = [Order, OrderSeat, Transfer];
