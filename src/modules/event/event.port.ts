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

export interface HoldDto {
  seatId: string;
  eventId: string;
  userId: string;
  orderId: string;
  price: number;
  heldUntil: string;
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
 * What other modules may ask of the event module. Every mutation is one conditional UPDATE and
 * is safe to repeat: repeating a hold, confirm or owner change that already happened answers as
 * the first call did. Refusals are typed errors (SEAT_NOT_FOUND, SEAT_UNAVAILABLE, …).
 */
export interface EventPort {
  getEvent(args: { eventId: string }): Promise<EventDto>;
  getSeat(args: { seatId: string }): Promise<SeatDto>;
  getSeats(args: { seatIds: string[] }): Promise<SeatDto[]>;
  listSeatsOwnedBy(args: { userId: string }): Promise<SeatDto[]>;
  /** SEAT_NOT_FOUND, SEAT_UNAVAILABLE (held by another live hold), SEAT_ALREADY_SOLD, EVENT_ENDED. */
  holdSeat(args: { seatId: string; userId: string; orderId: string; ttlSeconds: number }): Promise<HoldDto>;
  releaseHold(args: { seatId: string; orderId: string }): Promise<{ released: boolean }>;
  /** Only while the hold is live and this order's: else HOLD_EXPIRED or SEAT_NOT_HELD. */
  confirmSeat(args: { seatId: string; orderId: string; userId: string; pricePaid: number }): Promise<SeatDto>;
  /** SEAT_NOT_FOUND, SEAT_UNAVAILABLE (not SOLD), NOT_SEAT_OWNER (someone else owns it). */
  setOwner(args: { seatId: string; expectedOwnerId: string; newOwnerId: string }): Promise<SeatDto>;
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
    holdSeat: Joi.object({
      seatId: id,
      userId: id,
      orderId: id,
      ttlSeconds: Joi.number().integer().min(1).max(86400).required(),
    }),
    releaseHold: Joi.object({ seatId: id, orderId: id }),
    confirmSeat: Joi.object({
      seatId: id,
      orderId: id,
      userId: id,
      pricePaid: Joi.number().integer().min(0).max(2_000_000_000).required(),
    }),
    setOwner: Joi.object({ seatId: id, expectedOwnerId: id, newOwnerId: id }),
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
