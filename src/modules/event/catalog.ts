import { randomUUID } from 'node:crypto';
import type { Clock } from '../../kernel/clock.js';
import { AppError } from '../../kernel/errors.js';
import type { Database } from '../../kernel/persistence.js';
import { isoDate } from '../../kernel/schemas.js';
import { Event, ScanLog, Seat, Venue } from './event.entities.js';
import type { EventDto } from './event.port.js';
import type { EventRepository, ScanLogRepository, VenueRepository } from './event.repository.js';
import type { SeatRow, Seats } from './seats.js';

export interface SeatMapRow {
  row_number: string;
  seats: number;
  category: string;
}

export interface NewEvent {
  name: string;
  venueId: string;
  hallId: string;
  eventDate: Date;
  /** Category → price in cents. */
  pricingTiers: Record<string, number>;
  rows: SeatMapRow[];
}

interface EventRow {
  id: string;
  name: string;
  venue_id: string;
  venue_name: string;
  venue_address: string;
  hall_id: string;
  event_date: unknown;
  pricing_tiers: string;
  total_seats: number;
  available_seats?: number | string;
}

const SEAT_INSERT_COLUMNS = ['id', 'event_id', 'row_index', 'row_number', 'seat_number', 'category', 'price', 'status'];
const CHUNK = 500;

/**
 * Venues and events: created by admins, read by everyone. Admin work goes through the entities;
 * creating a seat map, the listings with their live seat counts and the seat map stay raw SQL (ADR 6).
 */
export function createCatalog(db: Database, seats: Seats, clock: Clock) {
  const venues = () => db.em.getRepository<Venue, VenueRepository>(Venue);
  const events = () => db.em.getRepository<Event, EventRepository>(Event);
  const scanLogs = () => db.em.getRepository<ScanLog, ScanLogRepository>(ScanLog);
  const t = {
    venues: db.table('venues'),
    events: db.table('events'),
    seats: db.table('seats'),
  };
  const EVENT_COLUMNS = `e.id, e.name, e.venue_id, v.name as venue_name, v.address as venue_address, e.hall_id,
    e.event_date, e.pricing_tiers, e.total_seats`;
  const AVAILABLE = `(select count(*) from ${t.seats} s where s.event_id = e.id
    and (s.status = 'AVAILABLE' or (s.status = 'HELD' and s.held_until <= :now)))`;

  const toEvent = (r: EventRow): EventDto => ({
    eventId: r.id,
    name: r.name,
    venueId: r.venue_id,
    venueName: r.venue_name,
    hallId: r.hall_id,
    eventDate: isoDate(db.date(r.event_date)),
    pricingTiers: JSON.parse(r.pricing_tiers) as Record<string, number>,
    totalSeats: Number(r.total_seats),
  });

  /**
   * The event, with its count of available seats only when asked: the count reads every seat of
   * the event, which the other modules' reads (a ticket's hall, a QR code) do not need.
   */
  async function eventRow(eventId: string, counted = true): Promise<EventRow> {
    const [row] = counted
      ? await db.all<EventRow>(
          `select ${EVENT_COLUMNS}, ${AVAILABLE} as available_seats from ${t.events} e join ${t.venues} v on v.id = e.venue_id where e.id = :eventId`,
          { now: db.time(clock.now()), eventId },
        )
      : await db.all<EventRow>(
          `select ${EVENT_COLUMNS} from ${t.events} e join ${t.venues} v on v.id = e.venue_id where e.id = :eventId`,
          { eventId },
        );
    if (!row) throw new AppError('EVENT_NOT_FOUND', 'No such event.');
    return row;
  }

  return {
    async createVenue(input: { name: string; address: string; totalHalls: number }) {
      const em = db.em;
      const venue = em.create(Venue, { id: randomUUID(), ...input, createdAt: new Date(clock.now()) });
      await em.flush();
      return venue;
    },

    /** The event and every seat of its map in one transaction: all of it exists, or none. */
    async createEvent(input: NewEvent) {
      const eventId = randomUUID();
      const totalSeats = input.rows.reduce((n, r) => n + r.seats, 0);
      const now = db.time(clock.now());
      // Venues are never deleted, and the foreign key holds the event to its venue anyway.
      await venues().get(input.venueId);
      await db.tx(async (trx) => {
        await db.all(
          `insert into ${t.events} (id, venue_id, name, hall_id, event_date, pricing_tiers, total_seats, created_at)
           values (:eventId, :venueId, :name, :hallId, :eventDate, :pricingTiers, :totalSeats, :now)`,
          {
            eventId,
            venueId: input.venueId,
            name: input.name,
            hallId: input.hallId,
            eventDate: db.time(input.eventDate),
            pricingTiers: JSON.stringify(input.pricingTiers),
            totalSeats,
            now,
          },
          trx,
        );
        let batch: unknown[][] = [];
        const flush = async () => {
          if (!batch.length) return;
          const placeholders = `(${SEAT_INSERT_COLUMNS.map(() => '?').join(', ')}, ?, ?)`;
          await db.all(
            `insert into ${t.seats} (${SEAT_INSERT_COLUMNS.join(', ')}, created_at, updated_at) values ${batch.map(() => placeholders).join(', ')}`,
            batch.flat(),
            trx,
          );
          batch = [];
        };
        for (const [rowIndex, row] of input.rows.entries()) {
          const price = input.pricingTiers[row.category];
          for (let n = 1; n <= row.seats; n++) {
            batch.push([
              randomUUID(),
              eventId,
              rowIndex,
              row.row_number,
              n,
              row.category,
              price,
              'AVAILABLE',
              now,
              now,
            ]);
            if (batch.length === CHUNK) await flush();
          }
        }
        await flush();
      });
      return { eventId, totalSeats };
    },

    /** Upcoming events, soonest first; expired holds count as available seats. */
    async listUpcoming(offset: number, limit: number) {
      const now = db.time(clock.now());
      const [{ n }] = await db.all<{ n: number | string }>(
        `select count(*) as n from ${t.events} where event_date > ?`,
        [now],
      );
      const rows = await db.all<EventRow>(
        `select ${EVENT_COLUMNS}, ${AVAILABLE} as available_seats from ${t.events} e join ${t.venues} v on v.id = e.venue_id
         where e.event_date > :now order by e.event_date, e.id limit :limit offset :offset`,
        { now, limit, offset },
      );
      return {
        items: rows.map((r) => ({
          ...toEvent(r),
          venueAddress: r.venue_address,
          availableSeats: Number(r.available_seats),
        })),
        total: Number(n),
      };
    },

    async getEvent(eventId: string): Promise<EventDto> {
      return toEvent(await eventRow(eventId, false));
    },

    /** The event with its seat map in row, then seat-number order. */
    async getEventWithSeats(eventId: string) {
      const row = await eventRow(eventId);
      const now = clock.now();
      const seatRows = await db.all<SeatRow>(
        `select id, event_id, row_number, seat_number, category, price, status, held_until from ${t.seats}
         where event_id = ? order by row_index, seat_number`,
        [eventId],
      );
      return {
        ...toEvent(row),
        venueAddress: row.venue_address,
        availableSeats: Number(row.available_seats),
        seats: seatRows.map((s) => ({
          seatId: s.id,
          rowNumber: s.row_number,
          seatNumber: Number(s.seat_number),
          status: seats.effective(s, now),
          category: s.category,
          price: Number(s.price),
        })),
      };
    },

    /** The door log of an event, newest first, with the row and number of each scanned seat that exists. */
    async entries(eventId: string, offset: number, limit: number) {
      await events().get(eventId);
      const { items, total } = await scanLogs().forEvent(eventId, offset, limit);
      const seatIds = [...new Set(items.map((l) => l.seatId))];
      const places = seatIds.length
        ? await db.em.find(Seat, { id: { $in: seatIds } }, { fields: ['id', 'rowNumber', 'seatNumber'] })
        : [];
      const place = new Map(places.map((s) => [s.id, s]));
      return { items: items.map((log) => ({ log, seat: place.get(log.seatId) })), total };
    },

    async seatsOwnedBy(userId: string) {
      const rows = await db.all<SeatRow>(
        `select ${seats.columns} from ${t.seats} where owner_user_id = ? order by event_id, row_index, seat_number`,
        [userId],
      );
      return rows.map((r) => seats.toDto(r));
    },

    async seatsById(seatIds: string[]) {
      if (!seatIds.length) return [];
      const rows = await db.all<SeatRow>(
        `select ${seats.columns} from ${t.seats} where id in (${seatIds.map(() => '?').join(', ')})`,
        seatIds,
      );
      return rows.map((r) => seats.toDto(r));
    },
  };
}

export type Catalog = ReturnType<typeof createCatalog>;
