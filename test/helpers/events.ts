import { randomUUID } from 'node:crypto';
import type { EventPort, OrderHoldDto, SeatDto } from '../../src/modules/event/index.js';
import { eventPortDefinition } from '../../src/modules/event/index.js';
import { type DbKind, late, sharedApp, type TestApp } from './app.js';
import { rowCounts } from './assert.js';
import { adaptersOf } from './ports.js';
import { adminLogin, newUser, type TestUser } from './users.js';

export interface SeatMapRow {
  row_number: string;
  seats: number;
  category: string;
}

export interface CreatedEvent {
  eventId: string;
  venueId: string;
  hallId: string;
  totalSeats: number;
  /** The seats as the public seat map lists them (row then number), prices in credits. */
  seats: {
    seat_id: string;
    row_number: string;
    seat_number: number;
    status: string;
    category: string;
    price: number;
  }[];
}

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** A date `ms` from now as ISO 8601 with a Z. */
export const fromNow = (ms: number) => new Date(Date.now() + ms).toISOString();

/** The event port's two adapters: in-process, and HTTP against the app's internal routes. */
export const ADAPTERS = adaptersOf('event', eventPortDefinition);

export const localPort = ADAPTERS.local;

export async function createVenue(
  app: TestApp,
  admin: TestUser,
  body: Record<string, unknown> = {},
): Promise<{ venue_id: string; name: string; address: string; total_halls: number; created_at: string }> {
  const res = await app.request('POST', '/api/admin/venues', {
    token: admin.token,
    body: {
      name: `Venue ${randomUUID().slice(0, 8)}`,
      address: '1 Test Street, Singapore 000001',
      total_halls: 2,
      ...body,
    },
  });
  if (res.status !== 201) throw new Error(`create venue: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data;
}

/** A valid event body; a fresh venue must be passed in. */
/** One app for the file on one database, with its admin and a venue made before the tests. */
export function sharedAppWithVenue(kind: DbKind) {
  let admin: TestUser | undefined;
  let venueId: string | undefined;
  const app = sharedApp(kind, {
    ready: async (a) => {
      admin = await adminLogin(a);
      venueId = (await createVenue(a, admin)).venue_id;
    },
  });
  return { app, admin: late(() => admin, 'the admin'), venue: () => venueId as string };
}

export const eventBody = (venueId: string, extra: Record<string, unknown> = {}) => ({
  name: `Event ${randomUUID().slice(0, 8)}`,
  venue_id: venueId,
  hall_id: 'HALL-A',
  event_date: fromNow(30 * DAY + Math.floor(Math.random() * DAY)),
  pricing_tiers: { CAT1: 149.5, CAT2: 80 },
  seat_map: {
    rows: [
      { row_number: 'A', seats: 5, category: 'CAT1' },
      { row_number: 'B', seats: 5, category: 'CAT2' },
    ],
  },
  ...extra,
});

/**
 * Creates an event through the admin API (on a fresh venue unless one is given) and reads its
 * seat map back. `rows` and other fields override the defaults of `eventBody`.
 */
export async function createEvent(
  app: TestApp,
  admin: TestUser,
  options: { venueId?: string; rows?: SeatMapRow[]; extra?: Record<string, unknown> } = {},
): Promise<CreatedEvent> {
  const venueId = options.venueId ?? (await createVenue(app, admin)).venue_id;
  const body = eventBody(venueId, {
    ...(options.rows ? { seat_map: { rows: options.rows } } : {}),
    ...options.extra,
  });
  const res = await app.request('POST', '/api/admin/events', { token: admin.token, body });
  if (res.status !== 201) throw new Error(`create event: ${res.status} ${JSON.stringify(res.body)}`);
  const map = await app.request('GET', `/api/events/${res.body.data.event_id}`);
  if (map.status !== 200) throw new Error(`seat map: ${map.status} ${JSON.stringify(map.body)}`);
  return {
    eventId: res.body.data.event_id,
    venueId,
    hallId: body.hall_id as string,
    totalSeats: res.body.data.total_seats,
    seats: map.body.data.seats,
  };
}

/** Seat ids of an event in seat-map order. */
export const seatIds = (e: CreatedEvent) => e.seats.map((s) => s.seat_id);

/** The hold limit the helpers reserve under: the product's default. */
export const HOLD_LIMIT = 10;

/** Holds one seat through the port, for a fresh user and order unless they are given. */
export const holdOne = (
  port: EventPort,
  seatId: string,
  options: { ttlSeconds?: number; userId?: string; orderId?: string; holdLimit?: number } = {},
): Promise<OrderHoldDto> =>
  port.holdSeats({
    seatIds: [seatId],
    userId: options.userId ?? randomUUID(),
    orderId: options.orderId ?? randomUUID(),
    ttlSeconds: options.ttlSeconds ?? 300,
    holdLimit: options.holdLimit ?? HOLD_LIMIT,
  });

/** Holds and confirms a seat through the port: it is SOLD to `userId` (a fresh id by default). */
export async function sellSeat(
  port: EventPort,
  seatId: string,
  userId: string = randomUUID(),
  pricePaid = 14950,
): Promise<{ userId: string; orderId: string; seat: SeatDto }> {
  const orderId = randomUUID();
  await holdOne(port, seatId, { userId, orderId });
  const [seat] = await port.confirmOrder({ orderId, userId, seats: [{ seatId, pricePaid }] });
  return { userId, orderId, seat };
}

/** A registered user promoted to staff by the admin (the role applies to their current token). */
export async function newStaff(app: TestApp, admin: TestUser): Promise<TestUser> {
  const u = await newUser(app);
  const res = await app.request('PATCH', `/api/admin/users/${u.userId}`, {
    token: admin.token,
    body: { role: 'staff' },
  });
  if (res.status !== 200) throw new Error(`promote to staff: ${res.status} ${JSON.stringify(res.body)}`);
  return u;
}

/** Rows of the event module's tables, to show that a refused request created nothing. */
export const eventRowCounts = (app: TestApp) =>
  rowCounts(app, 'event', { venues: 'venues', events: 'events', seats: 'seats', scans: 'scan_logs' });

/** Raw SQL on the event module's database (`?` placeholders). */
export function eventSql<T = Record<string, unknown>>(
  app: TestApp,
  sql: (t: (name: string) => string) => string,
  params: unknown[] = [],
) {
  const db = app.kernel.databases.get('event')!;
  return db.all<T>(
    sql((name) => db.table(name)),
    params,
  );
}

/** Moves an event's date to `ms` ago with a raw UPDATE (the API refuses past dates). */
export async function moveIntoPast(app: TestApp, eventId: string, ms = HOUR) {
  const db = app.kernel.databases.get('event')!;
  await db.all(`update ${db.table('events')} set event_date = ? where id = ?`, [db.time(Date.now() - ms), eventId]);
}

/** A seat's row as stored (not as readers see it), with its timestamps as epoch milliseconds. */
export async function seatRow(app: TestApp, seatId: string) {
  const db = app.kernel.databases.get('event')!;
  const [row] = await db.all<Record<string, unknown>>(
    `select id, status, owner_user_id, held_by_user_id, hold_order_id, held_until, sold_order_id, price_paid, checked_in_at, updated_at
     from ${db.table('seats')} where id = ?`,
    [seatId],
  );
  if (!row) return undefined;
  const ms = (v: unknown) => (v === null || v === undefined ? null : db.date(v).getTime());
  return {
    ...row,
    held_until: ms(row.held_until),
    checked_in_at: ms(row.checked_in_at),
    updated_at: ms(row.updated_at),
    price_paid: row.price_paid === null ? null : Number(row.price_paid),
  } as {
    id: string;
    status: string;
    owner_user_id: string | null;
    held_by_user_id: string | null;
    hold_order_id: string | null;
    held_until: number | null;
    sold_order_id: string | null;
    price_paid: number | null;
    checked_in_at: number | null;
    updated_at: number | null;
  };
}

/** scan_logs rows of one seat. */
export async function scansOf(app: TestApp, seatId: string) {
  return eventSql<{ result: string; staff_user_id: string; presented_hall: string; expected_hall: string | null }>(
    app,
    (t) => `select result, staff_user_id, presented_hall, expected_hall from ${t('scan_logs')} where seat_id = ?`,
    [seatId],
  );
}

/** An event of 6 seats, A1–A3 in CAT1 (149.50), B1–B3 in CAT2 (80), in hall HALL-A. */
export const smallEvent = (app: TestApp, admin: TestUser): Promise<CreatedEvent> =>
  createEvent(app, admin, {
    rows: [
      { row_number: 'A', seats: 3, category: 'CAT1' },
      { row_number: 'B', seats: 3, category: 'CAT2' },
    ],
  });
