import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { EventRepository, ScanLogRepository, VenueRepository } from './event.repository.js';

export const SEAT_STATUSES = ['AVAILABLE', 'HELD', 'SOLD', 'CHECKED_IN'] as const;
export type SeatStatus = (typeof SEAT_STATUSES)[number];
export const SCAN_RESULTS = [
  'SUCCESS',
  'DUPLICATE',
  'UNPAID',
  'NOT_FOUND',
  'WRONG_HALL',
  'EXPIRED',
  'NOT_OWNER',
] as const;
export type ScanResult = (typeof SCAN_RESULTS)[number];

export const Venue = defineEntity({
  name: 'Venue',
  tableName: 'venues',
  repository: () => VenueRepository,
  properties: {
    id: p.uuid().primary(),
    name: p.string().length(200),
    address: p.string().length(500),
    totalHalls: p.integer(),
    createdAt: p.datetime(),
  },
});
export type Venue = InferEntity<typeof Venue>;

export const Event = defineEntity({
  name: 'Event',
  tableName: 'events',
  repository: () => EventRepository,
  properties: {
    id: p.uuid().primary(),
    // No index of its own (MikroORM adds one per foreign key on SQLite): nothing reads events by venue.
    venueId: () =>
      p.manyToOne(Venue).mapToPk().fieldName('venue_id').updateRule('no action').deleteRule('no action').index(false),
    name: p.string().length(200),
    hallId: p.string().length(50),
    eventDate: p.datetime().index('events_event_date_idx'),
    /** Category → price in cents, as JSON text. */
    pricingTiers: p.text(),
    totalSeats: p.integer(),
    createdAt: p.datetime(),
  },
});
export type Event = InferEntity<typeof Event>;

/** A seat and its whole state; holds and sales are conditional updates of this row. */
export const Seat = defineEntity({
  name: 'Seat',
  tableName: 'seats',
  // The seat map reads in this order; the triple is also what makes a seat unique in its event.
  uniques: [{ name: 'seats_event_row_seat_uq', properties: ['eventId', 'rowIndex', 'seatNumber'] }],
  indexes: [
    // available_seats counts by event and status.
    { name: 'seats_event_status_idx', properties: ['eventId', 'status'] },
    // "My tickets" reads by owner.
    { name: 'seats_owner_idx', properties: ['ownerUserId'] },
    // The sweeper looks only at held seats by expiry.
    {
      name: 'seats_held_until_idx',
      expression: (table, columns, name) =>
        `create index ${name} on ${table} (${columns.heldUntil}) where ${columns.status} = 'HELD'`,
    },
    // The hold limit counts a user's live holds on every reserve.
    {
      name: 'seats_holder_idx',
      expression: (table, columns, name) =>
        `create index ${name} on ${table} (${columns.heldByUserId}, ${columns.heldUntil}) where ${columns.status} = 'HELD'`,
    },
    // An order's seats are released, and a repeated reserve recognised, by the order.
    {
      name: 'seats_hold_order_idx',
      expression: (table, columns, name) =>
        `create index ${name} on ${table} (${columns.holdOrderId}) where ${columns.status} = 'HELD'`,
    },
  ],
  properties: {
    id: p.uuid().primary(),
    // No index of its own: the indexes above start with it.
    eventId: () =>
      p.manyToOne(Event).mapToPk().fieldName('event_id').updateRule('no action').deleteRule('no action').index(false),
    /** Position of the row in the seat map, so that the map reads in the order it was drawn. */
    rowIndex: p.integer(),
    rowNumber: p.string().length(10),
    seatNumber: p.integer(),
    category: p.string().length(20),
    price: p.integer(),
    status: p.enum(SEAT_STATUSES as unknown as string[]),
    ownerUserId: p.uuid().nullable(),
    heldByUserId: p.uuid().nullable(),
    holdOrderId: p.uuid().nullable(),
    heldUntil: p.datetime().nullable(),
    soldOrderId: p.uuid().nullable(),
    pricePaid: p.integer().nullable(),
    checkedInAt: p.datetime().nullable(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
});
export type Seat = InferEntity<typeof Seat>;

/** Every scan at the door, whatever its verdict. */
export const ScanLog = defineEntity({
  name: 'ScanLog',
  tableName: 'scan_logs',
  repository: () => ScanLogRepository,
  indexes: [{ name: 'scan_logs_event_scanned_idx', properties: ['eventId', 'scannedAt'] }],
  properties: {
    id: p.uuid().primary(),
    eventId: p.uuid().nullable(),
    seatId: p.uuid(),
    staffUserId: p.uuid(),
    result: p.enum(SCAN_RESULTS as unknown as string[]),
    presentedHall: p.string().length(50),
    expectedHall: p.string().length(50).nullable(),
    scannedAt: p.datetime(),
  },
});
export type ScanLog = InferEntity<typeof ScanLog>;

export const eventEntities = [Venue, Event, Seat, ScanLog];
