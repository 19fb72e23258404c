import { AppError, type ErrorDetail } from '../../kernel/errors.js';
import { createApiRouter } from '../../kernel/routing.js';
import { credits, isoDate } from '../../kernel/schemas.js';
import type { Catalog, SeatMapRow } from './catalog.js';
import type { EventDto } from './event.port.js';
import * as s from './event.schemas.js';

const tiersInCredits = (tiers: Record<string, number>) =>
  Object.fromEntries(Object.entries(tiers).map(([k, cents]) => [k, credits(cents)]));

const eventView = (e: EventDto & { availableSeats: number; venueAddress?: string }, withAddress = false) => ({
  event_id: e.eventId,
  name: e.name,
  venue: { venue_id: e.venueId, name: e.venueName, ...(withAddress ? { address: e.venueAddress } : {}) },
  hall_id: e.hallId,
  event_date: e.eventDate,
  total_seats: e.totalSeats,
  available_seats: e.availableSeats,
  pricing_tiers: tiersInCredits(e.pricingTiers),
});

/** The checks joi cannot express per field: the seat map against the tiers, the date, the size. */
function checkEvent(body: {
  event_date: string;
  pricing_tiers: Record<string, number>;
  seat_map: { rows: SeatMapRow[] };
}) {
  const details: ErrorDetail[] = [];
  if (new Date(body.event_date).getTime() <= Date.now()) {
    details.push({ field: 'event_date', message: 'event_date must be in the future' });
  }
  body.seat_map.rows.forEach((row, i) => {
    if (!Object.hasOwn(body.pricing_tiers, row.category)) {
      details.push({
        field: `seat_map.rows[${i}].category`,
        message: `category ${row.category} is not in pricing_tiers`,
      });
    }
  });
  const total = body.seat_map.rows.reduce((n, r) => n + r.seats, 0);
  if (total > s.MAX_SEATS) {
    details.push({
      field: 'seat_map.rows',
      message: `an event has at most ${s.MAX_SEATS} seats (this map has ${total})`,
    });
  }
  if (details.length) throw new AppError('VALIDATION_ERROR', 'The event is invalid.', details);
}

/** Public event listings and seat maps; admin venues, events and door entries. */
export function eventRoutes(catalog: Catalog) {
  const api = createApiRouter('event', 'Events and venues');

  api.route(
    'get',
    '/api/events',
    { summary: 'Upcoming events, soonest first', access: 'public', paginated: true, response: s.eventView },
    async ({ page }) => {
      const { items, total } = await catalog.listUpcoming(page.offset, page.perPage);
      return { items: items.map((e) => eventView(e)), total };
    },
  );

  api.route(
    'get',
    '/api/events/:event_id',
    {
      summary: 'An event with its seat map, by row then seat number',
      description: 'A hold past its TTL shows as AVAILABLE.',
      access: 'public',
      params: s.eventIdParams,
      response: s.seatMapView,
      errors: ['INVALID_UUID', 'EVENT_NOT_FOUND'],
    },
    async ({ params }) => {
      const e = await catalog.getEventWithSeats(params.event_id);
      return {
        ...eventView(e, true),
        seats: e.seats.map((seat) => ({
          seat_id: seat.seatId,
          row_number: seat.rowNumber,
          seat_number: seat.seatNumber,
          status: seat.status,
          category: seat.category,
          price: credits(seat.price),
        })),
      };
    },
  );

  api.route(
    'post',
    '/api/admin/venues',
    { summary: 'Create a venue', access: ['admin'], body: s.venueBody, response: s.venueView },
    async ({ body }) => {
      const v = await catalog.createVenue({ name: body.name, address: body.address, totalHalls: body.total_halls });
      return {
        venue_id: v.id,
        name: v.name,
        address: v.address,
        total_halls: v.totalHalls,
        created_at: isoDate(v.createdAt),
      };
    },
  );

  api.route(
    'post',
    '/api/admin/events',
    {
      summary: 'Create an event with its seat map',
      description: `Every seat is created with the event in one transaction; 1–${s.MAX_SEATS} seats, unique row labels, categories from pricing_tiers, a future date.`,
      access: ['admin'],
      body: s.eventBody,
      response: s.createdEventView,
      errors: ['INVALID_UUID', 'VENUE_NOT_FOUND'],
    },
    async ({ body }) => {
      checkEvent(body);
      const eventDate = new Date(body.event_date);
      const { eventId, totalSeats } = await catalog.createEvent({
        name: body.name,
        venueId: body.venue_id,
        hallId: body.hall_id,
        eventDate,
        pricingTiers: body.pricing_tiers,
        rows: body.seat_map.rows,
      });
      return {
        event_id: eventId,
        name: body.name,
        venue_id: body.venue_id,
        hall_id: body.hall_id,
        event_date: isoDate(eventDate),
        pricing_tiers: tiersInCredits(body.pricing_tiers),
        total_seats: totalSeats,
      };
    },
  );

  api.route(
    'get',
    '/api/admin/events/:event_id/entries',
    {
      summary: 'The door scan log of an event, newest first',
      access: ['staff', 'admin'],
      params: s.eventIdParams,
      paginated: true,
      response: s.entryView,
      errors: ['INVALID_UUID', 'EVENT_NOT_FOUND'],
    },
    async ({ params, page }) => {
      const { items, total } = await catalog.entries(params.event_id, page.offset, page.perPage);
      return {
        items: items.map(({ log, seat }) => ({
          scan_id: log.id,
          seat_id: log.seatId,
          row_number: seat?.rowNumber ?? null,
          seat_number: seat?.seatNumber ?? null,
          staff_user_id: log.staffUserId,
          result: log.result,
          presented_hall: log.presentedHall,
          expected_hall: log.expectedHall ?? null,
          scanned_at: isoDate(log.scannedAt),
        })),
        total,
      };
    },
  );

  return api;
}
