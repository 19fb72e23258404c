import { EntityRepository } from '@mikro-orm/knex';
import { AppError } from '../../kernel/errors.js';
import type { Event, ScanLog, Venue } from './event.entities.js';

/** Venues as admins create and name them. */
export class VenueRepository extends EntityRepository<Venue> {
  get(id: string) {
    return this.findOneOrFail({ id }, { failHandler: () => new AppError('VENUE_NOT_FOUND', 'No such venue.') });
  }
}

/** Events off the hot paths; listings with seat counts and seat maps stay raw SQL (ADR 6). */
export class EventRepository extends EntityRepository<Event> {
  get(id: string) {
    return this.findOneOrFail({ id }, { failHandler: () => new AppError('EVENT_NOT_FOUND', 'No such event.') });
  }
}

export class ScanLogRepository extends EntityRepository<ScanLog> {
  /** The door log of an event, newest first. */
  async forEvent(eventId: string, offset: number, limit: number) {
    const [items, total] = await this.findAndCount(
      { eventId },
      { orderBy: { scannedAt: 'desc', id: 'desc' }, offset, limit },
    );
    return { items, total };
  }
}
