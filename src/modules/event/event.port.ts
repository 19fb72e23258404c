import Joi from 'joi';
import { type PortDefinition, portMethods } from '../../kernel/ports.js';
import { uuid } from '../../kernel/schemas.js';
import { SCAN_RESULTS, type ScanResult, type SeatStatus } from './event.entities.js';

/** Prices are integer cents; timestamps ISO strings, so both adapters return the same JSON. */
export interface EventDto {
  eventId: string;
  name: string;
  venueId: string;
  venueName: string;
  hallId: string;
  eventDate: string;
  pricingTiers: Record<string, number>;
  totalSeats: number;
}

export interface SeatDto {
  seatId: string;
  eventId: string;
  rowNumber: string;
  seatNumber: number;
  category: string;
  price: number;
  /** As every reader must see it: a hold past its TTL is AVAILABLE. */
  status: SeatStatus;
  ownerUserId: string | null;
  heldByUserId: string | null;
  holdOrderId: string | null;
  heldUntil: string | null;
  soldOrderId: string | null;
  pricePaid: number | null;
  checkedInAt: string | null;
}

/** One seat of an order's hold, as the reserve answer shows it. */
export interface OrderSeatDto {
  seatId: string;
  rowNumber: string;
  seatNumber: number;
  category: string;
  price: number;
}

/** The seats of one order, held together until `heldUntil`. */
export interface OrderHoldDto {
  /** The order the seats are held for: the one asked for, or the caller's live order of exactly these seats. */
  orderId: string;
  userId: string;
  eventId: string;
  heldUntil: string;
  /** Sum of the seats' prices, in cents. */
  total: number;
  /** In the order the request named them. */
  seats: OrderSeatDto[];
}

export interface ScanVerdict {
  result: ScanResult;
  seatId: string;
  eventId: string | null;
  rowNumber: string | null;
  seatNumber: number | null;
  ownerUserId: string | null;
  expectedHall: string | null;
  /** When the seat was checked in (for SUCCESS and DUPLICATE). */
  checkedInAt: string | null;
  scannedAt: string;
}

/**
 * What other modules may ask of the event module. Every mutation is one conditional UPDATE (an
 * order's seats: one transaction) and is safe to repeat: repeating a hold, confirm or owner
 * change that already happened answers as the first call did. Refusals are typed errors (SEAT_NOT_FOUND, SEAT_UNAVAILABLE, …).
 */
export interface EventPort {
  getEvent(args: { eventId: string }): Promise<EventDto>;
  getSeat(args: { seatId: string }): Promise<SeatDto>;
  getSeats(args: { seatIds: string[] }): Promise<SeatDto[]>;
  listSeatsOwnedBy(args: { userId: string }): Promise<SeatDto[]>;
  /**
   * Holds every seat for the order, or none, in one transaction. A refusal is the first that
   * applies of SEAT_NOT_FOUND, EVENT_ENDED, SEAT_ALREADY_SOLD, SEAT_UNAVAILABLE, with details
   * naming each refused seat (`seat_ids[i]`); seats of several events are a VALIDATION_ERROR; a
   * user who would hold more than `holdLimit` live seats gets HOLD_LIMIT_REACHED. When every seat
   * is held live by this user for one order of exactly these seats, that order's hold is the
   * answer (a repeated reserve), whatever `orderId` says. Safe to repeat.
   */
  holdSeats(args: {
    seatIds: string[];
    userId: string;
    orderId: string;
    ttlSeconds: number;
    holdLimit: number;
  }): Promise<OrderHoldDto>;
  /** Releases every seat still held for the order; a repeat releases nothing more. */
  releaseOrder(args: { orderId: string }): Promise<{ released: number }>;
  /**
   * Gives the order up: releases every seat still held for it, so that no confirm sent earlier can
   * sell one any more, and answers how many of `seatIds` it bought (a confirm sells all or none).
   * A payment is refunded only when that is none. Safe to repeat.
   */
  abandonOrder(args: { orderId: string; seatIds: string[] }): Promise<{ released: number; sold: number }>;
  /**
   * Sells every seat of the order to `userId` at its price, or none: only while every hold is
   * live and this order's, else HOLD_EXPIRED (the order's holds ran out) or SEAT_NOT_HELD. A
   * repeat after the sale answers the sold seats.
   */
  confirmOrder(args: {
    orderId: string;
    userId: string;
    seats: { seatId: string; pricePaid: number }[];
  }): Promise<SeatDto[]>;
  /**
   * Moves a SOLD seat from its expected owner to a new one, once per `key`: a repeat of the key
   * answers the first move and changes nothing, even after the seat has moved on or back. A
   * seat already owned by `newOwnerId` is answered as it is. SEAT_NOT_FOUND, SEAT_UNAVAILABLE
   * (not SOLD), NOT_SEAT_OWNER (someone else owns it).
   */
  setOwner(args: { seatId: string; expectedOwnerId: string; newOwnerId: string; key: string }): Promise<SeatDto>;
  /** The door verdict for a seat the QR names, logged; SUCCESS checks the seat in. */
  checkIn(args: {
    seatId: string;
    expectedOwnerId: string;
    staffId: string;
    presentedHall: string;
  }): Promise<ScanVerdict>;
  /** Logs a verdict decided before the seat was looked at (EXPIRED). */
  logScan(args: { seatId: string; staffId: string; presentedHall: string; result: ScanResult }): Promise<ScanVerdict>;
}

const id = uuid().required();
const hall = Joi.string().min(1).max(50).required();

export const eventPortDefinition: PortDefinition = {
  name: 'event',
  methods: portMethods<EventPort>({
    getEvent: Joi.object({ eventId: id }),
    getSeat: Joi.object({ seatId: id }),
    getSeats: Joi.object({ seatIds: Joi.array().items(uuid()).max(1000).required() }),
    listSeatsOwnedBy: Joi.object({ userId: id }),
    holdSeats: Joi.object({
      seatIds: Joi.array().items(id).min(1).max(100).unique().required(),
      userId: id,
      orderId: id,
      ttlSeconds: Joi.number().integer().min(1).max(86400).required(),
      holdLimit: Joi.number().integer().min(1).max(1000).required(),
    }),
    releaseOrder: Joi.object({ orderId: id }),
    abandonOrder: Joi.object({ orderId: id, seatIds: Joi.array().items(id).min(1).max(100).unique().required() }),
    confirmOrder: Joi.object({
      orderId: id,
      userId: id,
      seats: Joi.array()
        .items(
          Joi.object({
            seatId: id,
            pricePaid: Joi.number().integer().min(0).max(2_000_000_000).required(),
          }),
        )
        .min(1)
        .max(100)
        .unique('seatId')
        .required(),
    }),
    setOwner: Joi.object({
      seatId: id,
      expectedOwnerId: id,
      newOwnerId: id,
      key: Joi.string().min(1).max(160).required(),
    }),
    checkIn: Joi.object({ seatId: id, expectedOwnerId: id, staffId: id, presentedHall: hall }),
    logScan: Joi.object({
      seatId: id,
      staffId: id,
      presentedHall: hall,
      result: Joi.string()
        .valid(...SCAN_RESULTS)
        .required(),
    }),
  }),
};
