import Joi from 'joi';
import { type PortDefinition, portMethods } from '../../kernel/ports.js';
import { uuid } from '../../kernel/schemas.js';

export const ORDER_STATUSES = ['PENDING', 'CONFIRMED', 'EXPIRED', 'FAILED', 'REFUNDED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** Amounts are integer cents; timestamps ISO strings, so both adapters return the same JSON. */
export interface OrderDto {
  orderId: string;
  userId: string;
  eventId: string;
  /** As stored: a PENDING order stays PENDING past `expiresAt` until the sweeper or endOrder ends it. */
  status: OrderStatus;
  /** Sum of the seats' prices. */
  total: number;
  /** What was charged: the total once CONFIRMED (or REFUNDED), else 0. */
  creditsCharged: number;
  /** In the order the reserve named them. */
  seats: { seatId: string; price: number }[];
  /** When the order's hold ends; a PENDING order past it is as good as EXPIRED. */
  expiresAt: string;
  createdAt: string;
  confirmedAt: string | null;
  updatedAt: string;
}

/**
 * The status as readers must see it at `now`: a PENDING order past its hold is EXPIRED at once,
 * whether or not the sweeper has passed (as a seat past its hold reads as AVAILABLE).
 */
export const liveStatus = (o: Pick<OrderDto, 'status' | 'expiresAt'>, now: number): OrderStatus =>
  o.status === 'PENDING' && Date.parse(o.expiresAt) <= now ? 'EXPIRED' : o.status;

/**
 * What other modules may ask of the order module. Every mutation is a conditional update keyed
 * by the order id and safe to repeat: a repeat answers with the order as it now is.
 */
export interface OrderPort {
  /**
   * Creates a PENDING order; a repeat with the same id answers the existing order (a repeat's
   * `expiresAt` is not compared: the order keeps its own). The same id with another user, event
   * or seats, or a total past 2,147,483,647 cents, is VALIDATION_ERROR.
   */
  createOrder(args: {
    orderId: string;
    userId: string;
    eventId: string;
    seats: { seatId: string; price: number }[];
    expiresAt: string;
  }): Promise<OrderDto>;
  /** ORDER_NOT_FOUND when there is none. */
  getOrder(args: { orderId: string }): Promise<OrderDto>;
  /** The orders that exist among these ids (unknown ids are left out). */
  getOrders(args: { orderIds: string[] }): Promise<OrderDto[]>;
  /**
   * Marks the order paid: its seats are sold and its total charged. Moves PENDING, EXPIRED or
   * FAILED to CONFIRMED (the seats and the money are the truth: forward recovery); a repeat
   * answers the confirmed order. ORDER_NOT_FOUND when there is none.
   */
  confirmOrder(args: { orderId: string }): Promise<OrderDto>;
  /** Ends a PENDING order as EXPIRED or FAILED; any other status is left as it is and answered. */
  endOrder(args: { orderId: string; status: 'EXPIRED' | 'FAILED' }): Promise<OrderDto>;
}

const id = uuid().required();
const isoTime = Joi.string().isoDate().required();

export const orderPortDefinition: PortDefinition = {
  name: 'order',
  methods: portMethods<OrderPort>({
    createOrder: Joi.object({
      orderId: id,
      userId: id,
      eventId: id,
      seats: Joi.array()
        .items(Joi.object({ seatId: id, price: Joi.number().integer().min(0).max(2_000_000_000).required() }))
        .min(1)
        .max(100)
        .unique('seatId')
        .required(),
      expiresAt: isoTime,
    }),
    getOrder: Joi.object({ orderId: id }),
    getOrders: Joi.object({ orderIds: Joi.array().items(uuid()).max(1000).required() }),
    confirmOrder: Joi.object({ orderId: id }),
    endOrder: Joi.object({ orderId: id, status: Joi.string().valid('EXPIRED', 'FAILED').required() }),
  }),
};
