import type { Config } from '../../kernel/config.js';
import type { Logger } from '../../kernel/logger.js';
import type { Database } from '../../kernel/persistence.js';
import type { Catalog, SeatMapRow } from './catalog.js';

const DAY = 86_400_000;

/** Row labels A…Z, then AA, AB, …: as many as a hall needs. */
export const rowLabel = (i: number): string =>
  i < 26 ? String.fromCharCode(65 + i) : rowLabel(Math.floor(i / 26) - 1) + String.fromCharCode(65 + (i % 26));

const rows = (count: number, seats: number, category: (i: number) => string): SeatMapRow[] =>
  Array.from({ length: count }, (_, i) => ({ row_number: rowLabel(i), seats, category: category(i) }));

/** A venue and two upcoming events (one of 5,000 seats) on an empty development database. */
export async function seedEvents({
  config,
  db,
  log,
  catalog,
}: {
  config: Config;
  db: Database;
  log: Logger;
  catalog: Catalog;
}) {
  if (!config.seedDemo || config.env === 'production') return;
  const [{ n }] = await db.all<{ n: number | string }>(`select count(*) as n from ${db.table('venues')}`);
  if (Number(n) > 0) return;
  const venue = await catalog.createVenue({
    name: 'Singapore Indoor Stadium',
    address: '2 Stadium Walk, Singapore 397691',
    totalHalls: 2,
  });
  const big = await catalog.createEvent({
    name: 'Neon Skyline World Tour',
    venueId: venue.id,
    hallId: 'HALL-A',
    eventDate: new Date(Date.now() + 30 * DAY),
    pricingTiers: { CAT1: 35_000, CAT2: 25_000, CAT3: 15_000 },
    rows: rows(50, 100, (i) => (i < 10 ? 'CAT1' : i < 30 ? 'CAT2' : 'CAT3')),
  });
  const small = await catalog.createEvent({
    name: 'An Acoustic Evening',
    venueId: venue.id,
    hallId: 'HALL-B',
    eventDate: new Date(Date.now() + 14 * DAY),
    pricingTiers: { CAT1: 12_000, CAT2: 8_000 },
    rows: rows(10, 20, (i) => (i < 4 ? 'CAT1' : 'CAT2')),
  });
  log.info({ venue_id: venue.id, events: [big, small] }, 'seeded demo venue and events');
}
