import { Counter } from 'prom-client';
import { AppError } from '../../kernel/errors.js';
import { defineModule } from '../../kernel/module.js';
import { createCatalog } from './catalog.js';
import { eventEntities } from './event.entities.js';
import { eventErrors } from './event.errors.js';
import { eventMigrations } from './event.migrations.js';
import { type EventPort, eventPortDefinition } from './event.port.js';
import { eventRoutes } from './event.routes.js';
import { seedEvents } from './event.seed.js';
import { eventSettings } from './event.settings.js';
import { createSeats } from './seats.js';

export { SCAN_RESULTS, type ScanResult } from './event.entities.js';
export type { EventDto, EventPort, OrderHoldDto, OrderSeatDto, ScanVerdict, SeatDto } from './event.port.js';
export { eventPortDefinition } from './event.port.js';

declare module '../../kernel/registry.js' {
  interface PortTypes {
    event: EventPort;
  }
}

/** Venues, events and seats: holds, sales, ownership and check-ins, and the door's scan log. */
export const eventModule = defineModule({
  name: 'event',
  defaultPort: 5002,
  entities: eventEntities,
  migrations: eventMigrations,
  port: eventPortDefinition,
  errors: eventErrors,
  settings: eventSettings,
  start({ config, db, log, metrics, clock, idempotency }) {
    const seats = createSeats(db, clock, idempotency);
    const catalog = createCatalog(db, seats, clock);
    const holds = new Counter({
      name: 'event_holds_taken_total',
      help: 'Seat holds taken (one per seat)',
      registers: [metrics],
    });
    const expired = new Counter({
      name: 'event_holds_expired_total',
      help: 'Expired holds swept',
      registers: [metrics],
    });
    const scans = new Counter({
      name: 'event_scans_total',
      help: 'Door scans by verdict',
      labelNames: ['result'],
      registers: [metrics],
    });
    const counted = async <T extends { result: string }>(verdict: Promise<T>) => {
      const v = await verdict;
      scans.inc({ result: v.result });
      return v;
    };

    const port: EventPort = {
      getEvent: ({ eventId }) => catalog.getEvent(eventId),
      async getSeat({ seatId }) {
        const row = await seats.one(seatId);
        if (!row) throw new AppError('SEAT_NOT_FOUND', 'No such seat.');
        return seats.toDto(row);
      },
      getSeats: ({ seatIds }) => catalog.seatsById(seatIds),
      listSeatsOwnedBy: ({ userId }) => catalog.seatsOwnedBy(userId),
      async holdSeats(args) {
        const { hold, taken } = await seats.holdOrder(args);
        if (taken) holds.inc(taken);
        return hold;
      },
      releaseOrder: (args) => seats.releaseOrder(args),
      abandonOrder: (args) => seats.abandonOrder(args),
      confirmOrder: (args) => seats.confirmOrder(args),
      setOwner: (args) => seats.setOwner(args),
      checkIn: (args) => counted(seats.checkIn(args)),
      logScan: (args) => counted(seats.logScan(args)),
    };

    return {
      routers: [eventRoutes(catalog)],
      port,
      jobs: [
        {
          name: 'hold-sweeper',
          intervalMs: config.sweepIntervalMs,
          run: async () => expired.inc(await seats.sweep()),
        },
      ],
      afterStart: () => seedEvents({ config, db, log, catalog }),
    };
  },
});
