import Joi from 'joi';
import { type PortDefinition, portMethods } from '../../kernel/ports.js';
import { uuid } from '../../kernel/schemas.js';
import {
  ORDER_STATUSES,
  type OrderStatus,
  TRANSFER_INITIATORS,
  TRANSFER_STATUSES,
  type TransferStatus,
} from './order.entities.js';

export { ORDER_STATUSES, type OrderStatus };

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

/** A resale of one seat; amounts in cents, timestamps ISO strings. */
export interface TransferDto {
  transferId: string;
  seatId: string;
  /** The order that sold the seat, when known. */
  orderId: string | null;
  sellerUserId: string;
  buyerUserId: string;
  creditsAmount: number;
  /** As readers must see it: a transfer under way whose codes ran out is FAILED. */
  status: TransferStatus;
  initiatedBy: 'SELLER' | 'BUYER';
  disputeReason: string | null;
  /** What the dispute froze of the seller's credits. */
  frozenAmount: number | null;
  /** When a transfer under way stops being confirmable; null once its confirm has claimed it. */
  expiresAt: string | null;
  createdAt: string;
  updatedAt: string;
  completedAt: string | null;
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
  /**
   * Records an INITIATED transfer. TRANSFER_IN_PROGRESS when another transfer of the seat is
   * under way (the database's partial unique index decides); SELF_TRANSFER when seller and buyer
   * are one user. A repeat with the same id answers that transfer; the same id with another
   * seat, users or amount is VALIDATION_ERROR.
   */
  createTransfer(args: {
    transferId: string;
    seatId: string;
    orderId: string | null;
    sellerUserId: string;
    buyerUserId: string;
    creditsAmount: number;
    initiatedBy: 'SELLER' | 'BUYER';
    /** When the transfer stops being confirmable unless confirmed. */
    expiresAt: string;
  }): Promise<TransferDto>;
  /** TRANSFER_NOT_FOUND when there is none. */
  getTransfer(args: { transferId: string }): Promise<TransferDto>;
  /**
   * Moves a transfer from `from` to `to` if it is in `from` (one conditional UPDATE), along the
   * state machine: INITIATED → PENDING_OTP | FAILED; PENDING_OTP → PENDING_OTP (the confirm's
   * claim: `expiresAt: null`, only while the codes are live) | COMPLETED | FAILED; COMPLETED →
   * DISPUTED (once per transfer, with the reason and the frozen amount); DISPUTED → COMPLETED |
   * REVERSED. Another move is VALIDATION_ERROR. `changed` is false when the transfer was not in
   * `from` (a repeat finds it in `to`); the answer is the transfer as it now is.
   */
  updateTransfer(args: {
    transferId: string;
    from: TransferStatus;
    to: TransferStatus;
    expiresAt?: string | null;
    disputeReason?: string;
    frozenAmount?: number;
    /** Only a transfer no confirm has claimed (its expiry is still set), e.g. to cancel it on a third wrong code. */
    unclaimed?: boolean;
  }): Promise<{ changed: boolean; transfer: TransferDto }>;
}

const id = uuid().required();
const isoTime = Joi.string().isoDate().required();
const cents = Joi.number().integer().min(0).max(2_000_000_000).required();
const status = Joi.string()
  .valid(...TRANSFER_STATUSES)
  .required();

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
    createTransfer: Joi.object({
      transferId: id,
      seatId: id,
      orderId: uuid().allow(null).required(),
      sellerUserId: id,
      buyerUserId: id,
      creditsAmount: cents,
      initiatedBy: Joi.string()
        .valid(...TRANSFER_INITIATORS)
        .required(),
      expiresAt: isoTime,
    }),
    getTransfer: Joi.object({ transferId: id }),
    updateTransfer: Joi.object({
      transferId: id,
      from: status,
      to: status,
      expiresAt: Joi.string().isoDate().allow(null),
      disputeReason: Joi.string().min(1).max(500),
      frozenAmount: Joi.number().integer().min(0).max(2_000_000_000),
      unclaimed: Joi.boolean(),
    }),
  }),
};
