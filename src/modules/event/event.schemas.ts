import Joi from 'joi';
import { money, uuid } from '../../kernel/schemas.js';
import { SCAN_RESULTS, SEAT_STATUSES } from './event.entities.js';

export const MAX_SEATS = 50_000;
const category = Joi.string().pattern(/^[A-Za-z0-9_-]{1,20}$/);
const hallId = Joi.string().trim().min(1).max(50);
const ZONED_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/;
/** Whether the calendar date written in the string exists (Date.parse turns 30 February into 2 March). */
const realDay = (value: string) => {
  const [y, m, d] = value.slice(0, 10).split('-').map(Number);
  return m >= 1 && m <= 12 && d >= 1 && d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
};
/**
 * A date with its time zone written out, so that "19:00" cannot mean two moments. Not joi's
 * isoDate(): with conversion on, it rewrites a zoneless value to UTC before any rule can see it.
 */
const zonedDate = Joi.string()
  .pattern(ZONED_DATE)
  .custom((value: string, helpers) =>
    Number.isNaN(Date.parse(value)) || !realDay(value) ? helpers.error('string.isoDate') : value,
  )
  .messages({
    'string.pattern.base': '{{#label}} must be ISO 8601 with a time zone, e.g. 2027-03-01T19:00:00Z',
    'string.isoDate': '{{#label}} is not a valid date',
  })
  .meta({ swagger: { format: 'date-time' } });

/**
 * A row's label for the uniqueness rule, case aside. joi compares the rows even when some failed
 * their own schema, so a row may be anything here; one without a text label repeats nothing.
 */
const rowLabel = (row: unknown) => {
  const label = (row as { row_number?: unknown } | null)?.row_number;
  return typeof label === 'string' ? label.toLowerCase() : undefined;
};

export const eventIdParams = Joi.object({ event_id: uuid().required() });

export const venueBody = Joi.object({
  name: Joi.string().trim().min(1).max(200).required(),
  address: Joi.string().trim().min(1).max(500).required(),
  // strict: a body's number is a JSON number, not a string that looks like one.
  total_halls: Joi.number().strict().integer().min(1).max(1000).required(),
}).example({ name: 'Esplanade Concert Hall', address: '1 Esplanade Drive, Singapore 038981', total_halls: 2 });

export const eventBody = Joi.object({
  name: Joi.string().trim().min(1).max(200).required(),
  venue_id: uuid().required(),
  hall_id: hallId.required(),
  event_date: zonedDate.required(),
  pricing_tiers: Joi.object()
    .pattern(category, money({ max: 100_000 }))
    .min(1)
    .max(20)
    .required(),
  seat_map: Joi.object({
    rows: Joi.array()
      .items(
        Joi.object({
          row_number: Joi.string().trim().min(1).max(10).required(),
          seats: Joi.number().strict().integer().min(1).max(MAX_SEATS).required(),
          category: category.required(),
        }),
      )
      .min(1)
      .max(5000)
      .unique((a, b) => rowLabel(a) !== undefined && rowLabel(a) === rowLabel(b))
      .messages({ 'array.unique': 'row labels must be unique ({{#label}} repeats one)' })
      .required(),
  }).required(),
}).example({
  name: 'Neon Skyline: Encore Night',
  venue_id: '8b0e6f1a-2c3d-4e5f-9a7b-1c2d3e4f5a6b',
  hall_id: 'HALL-A',
  event_date: '2030-06-01T19:30:00+08:00',
  pricing_tiers: { CAT1: 188, CAT2: 128, CAT3: 88 },
  seat_map: {
    rows: [
      { row_number: 'A', seats: 20, category: 'CAT1' },
      { row_number: 'B', seats: 20, category: 'CAT2' },
      { row_number: 'C', seats: 30, category: 'CAT3' },
    ],
  },
});

const venueRef = Joi.object({ venue_id: Joi.string().uuid(), name: Joi.string(), address: Joi.string() });
const tiers = Joi.object().pattern(Joi.string(), Joi.number()).description('category → price in credits');

export const eventView = Joi.object({
  event_id: Joi.string().uuid(),
  name: Joi.string(),
  venue: venueRef,
  hall_id: Joi.string(),
  event_date: Joi.string().isoDate(),
  total_seats: Joi.number().integer(),
  available_seats: Joi.number().integer(),
  pricing_tiers: tiers,
});

export const seatMapView = eventView.keys({
  seats: Joi.array().items(
    Joi.object({
      seat_id: Joi.string().uuid(),
      row_number: Joi.string(),
      seat_number: Joi.number().integer(),
      status: Joi.string().valid(...SEAT_STATUSES),
      category: Joi.string(),
      price: Joi.number(),
    }),
  ),
});

export const venueView = Joi.object({
  venue_id: Joi.string().uuid(),
  name: Joi.string(),
  address: Joi.string(),
  total_halls: Joi.number().integer(),
  created_at: Joi.string().isoDate(),
});

export const createdEventView = Joi.object({
  event_id: Joi.string().uuid(),
  name: Joi.string(),
  venue_id: Joi.string().uuid(),
  hall_id: Joi.string(),
  event_date: Joi.string().isoDate(),
  pricing_tiers: tiers,
  total_seats: Joi.number().integer(),
});

export const entryView = Joi.object({
  scan_id: Joi.string().uuid(),
  seat_id: Joi.string().uuid(),
  row_number: Joi.string().allow(null),
  seat_number: Joi.number().integer().allow(null),
  staff_user_id: Joi.string().uuid(),
  result: Joi.string().valid(...SCAN_RESULTS),
  presented_hall: Joi.string(),
  expected_hall: Joi.string().allow(null),
  scanned_at: Joi.string().isoDate(),
});
