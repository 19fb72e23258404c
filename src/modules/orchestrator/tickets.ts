import QRCode from 'qrcode';
import type { Principal } from '../../kernel/auth.js';
import type { Clock } from '../../kernel/clock.js';
import type { Config } from '../../kernel/config.js';
import { AppError } from '../../kernel/errors.js';
import type { RequiredPorts } from '../../kernel/registry.js';
import { credits } from '../../kernel/schemas.js';
import type { EventDto } from '../event/index.js';
import { sealQr, wholeSecond } from './qr.js';

type Ports = RequiredPorts<'event' | 'order'>;

/**
 * Tickets are seats: one per seat the caller owns now, whatever order sold it. A QR code is built
 * on demand from the current owner, so a code made before the seat changed hands stops matching.
 */
export function createTickets({ event, order }: Ports, config: Config, clock: Clock) {
  return {
    async list(principal: Principal) {
      const seats = await event.listSeatsOwnedBy({ userId: principal.userId });
      const orderIds = [...new Set(seats.map((s) => s.soldOrderId).filter((id): id is string => !!id))];
      const eventIds = [...new Set(seats.map((s) => s.eventId))];
      const [orders, events] = await Promise.all([
        orderIds.length ? order.getOrders({ orderIds }) : [],
        Promise.all(eventIds.map((eventId) => event.getEvent({ eventId }))),
      ]);
      const orderById = new Map(orders.map((o) => [o.orderId, o]));
      const eventById = new Map<string, EventDto>(events.map((e) => [e.eventId, e]));
      return seats.map((s) => {
        const sold = s.soldOrderId ? orderById.get(s.soldOrderId) : undefined;
        const e = eventById.get(s.eventId) as EventDto;
        return {
          seat_id: s.seatId,
          order_id: s.soldOrderId,
          event: {
            event_id: e.eventId,
            name: e.name,
            event_date: e.eventDate,
            hall_id: e.hallId,
            venue_name: e.venueName,
          },
          row_number: s.rowNumber,
          seat_number: s.seatNumber,
          category: s.category,
          status: s.status,
          price_paid: credits(s.pricePaid ?? 0),
          acquired_via: !sold || sold.userId === principal.userId ? ('PURCHASE' as const) : ('TRANSFER' as const),
          purchased_at: sold?.confirmedAt ?? null,
        };
      });
    },

    /** The QR of a sold seat the caller owns: SEAT_NOT_FOUND, NOT_SEAT_OWNER, or SEAT_UNAVAILABLE if not SOLD. */
    async qr(principal: Principal, seatId: string) {
      const seat = await event.getSeat({ seatId });
      const mine = seat.ownerUserId === principal.userId || seat.heldByUserId === principal.userId;
      if (!mine) throw new AppError('NOT_SEAT_OWNER', 'This ticket belongs to someone else.');
      if (seat.status !== 'SOLD') {
        throw new AppError(
          'SEAT_UNAVAILABLE',
          seat.status === 'CHECKED_IN' ? 'This ticket has already been used.' : 'This seat is not paid for yet.',
        );
      }
      const { hallId } = await event.getEvent({ eventId: seat.eventId });
      const now = clock.now();
      const generatedAt = wholeSecond(now);
      const payload = sealQr(config.qrEncryptionKey, {
        seat_id: seat.seatId,
        user_id: principal.userId,
        hall_id: hallId,
        generated_at: generatedAt,
      });
      return {
        qr_payload: payload,
        generated_at: generatedAt,
        expires_at: wholeSecond(now + config.qrTtlSeconds * 1000),
        ttl_seconds: config.qrTtlSeconds,
      };
    },

    /** The QR code as an image of its payload. */
    image: (payload: string, format: 'svg' | 'png') =>
      format === 'svg'
        ? QRCode.toString(payload, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 })
        : QRCode.toBuffer(payload, { type: 'png', errorCorrectionLevel: 'M', margin: 2, scale: 6 }),
  };
}

export type Tickets = ReturnType<typeof createTickets>;
