import Joi from 'joi';
import type { ErrorDetail } from './errors.js';

/** Building blocks for route schemas; validated values come out in the types the code uses. */

/** The joi error code of a malformed UUID, which the routes answer as INVALID_UUID. */
export const UUID_ERROR = 'string.uuid';

/** Canonical 8-4-4-4-12 hex, versions 1–5, 7 and 8, the RFC 9562 variant. */
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-578][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** The same test outside joi (token claims): a value every `uuid()` schema accepts. */
export const isUuid = (v: unknown): v is string => typeof v === 'string' && CANONICAL_UUID.test(v);

/**
 * A UUID in its canonical form, lower-cased. Not joi's guid(): it also takes `{…}`, `(…)`, undashed
 * and colon forms, which PostgreSQL reads differently from SQLite (or refuses with an error), and
 * says "GUID"; one rule also means one detail per malformed id.
 */
export const uuid = () =>
  Joi.string()
    .custom((value: string, helpers) => (CANONICAL_UUID.test(value) ? value.toLowerCase() : helpers.error(UUID_ERROR)))
    .messages({ [UUID_ERROR]: '{{#label}} must be a valid UUID' })
    .meta({ swagger: { format: 'uuid' } });

/**
 * A number written with at most two decimals. JavaScript writes a number as the shortest decimal
 * that reads back as it, which is what the client sent (up to spellings such as `1.10` or `1.1e0`),
 * so the test is on that decimal, not on the binary float: 0.29 * 100 is 28.999999999999996, and
 * 1e-12 * 100 is within any tolerance of 0 cents. A sign is left to the bounds, which report it.
 */
const WHOLE_CENTS = /^-?\d+(\.\d{1,2})?$/;

/**
 * A positive amount of credits (or zero, with `zero`), at most `max`, as a JSON number with at
 * most two decimals. The validated value is integer cents, so that no code after the edge ever
 * sees floating-point money.
 */
export const money = ({ max, zero = false }: { max: number; zero?: boolean }) =>
  Joi.number()
    .strict()
    [zero ? 'min' : 'greater'](0)
    .max(max)
    .custom(
      (value: number, helpers) =>
        // An integer is whole cents at any size (String writes 1e21 and up with an exponent). Exact:
        // a value with at most two decimals, times 100, is within an ulp of its cents.
        Number.isInteger(value) || WHOLE_CENTS.test(String(value))
          ? Math.round(value * 100)
          : helpers.error('number.cents'),
      'credits to cents',
    )
    .messages({ 'number.cents': '{{#label}} must be a whole number of cents (at most two decimals)' })
    .meta({
      swagger: { type: 'number', minimum: 0, exclusiveMinimum: !zero, maximum: max, multipleOf: 0.01 },
      swaggerOverride: true,
    });

/** Cents back to credits at the edge. */
export const credits = (cents: number) => cents / 100;

export const pagination = {
  page: Joi.number().integer().min(1).max(1_000_000).default(1),
  per_page: Joi.number().integer().min(1).max(100).default(20),
};

export interface Page {
  page: number;
  perPage: number;
  offset: number;
}

export const toPage = (query: { page: number; per_page: number }): Page => ({
  page: query.page,
  perPage: query.per_page,
  offset: (query.page - 1) * query.per_page,
});

export const isoDate = (d: Date | string | number) => new Date(d).toISOString();

export const messageSchema = Joi.object({ message: Joi.string() });

/** How deep arrays and objects may nest in a request part; any body we take needs far fewer (a seat map, four). */
const MAX_DEPTH = 32;

interface Visit {
  value: unknown;
  /** Arrays and objects around the value. */
  depth: number;
  key: string | number;
  parent?: Visit;
}

const keysOf = (visit: Visit) => {
  const keys: (string | number)[] = [];
  for (let v: Visit | undefined = visit; v?.parent; v = v.parent) keys.push(v.key);
  return keys.reverse();
};

/**
 * The first fault of a decoded request part that no schema should be handed: nesting deeper than
 * MAX_DEPTH, or a string holding a NUL, which PostgreSQL cannot store and which ends a SQLite
 * literal. The walk keeps its own stack and visits each value once, so its cost is linear in the
 * size of the part and no depth can exhaust the call stack.
 */
export function shapeFault(value: unknown, where: string): ErrorDetail | undefined {
  const stack: Visit[] = [{ value, depth: 0, key: '' }];
  for (let visit = stack.pop(); visit; visit = stack.pop()) {
    const item = visit.value;
    if (typeof item === 'string') {
      if (!item.includes('\u0000')) continue;
      const field = fieldPath(keysOf(visit)) || where;
      return { field, message: `${field} must not contain NUL characters` };
    }
    if (typeof item !== 'object' || item === null) continue;
    if (visit.depth === MAX_DEPTH) {
      // The whole path would be 32 keys of noise; the field at the top is the one to fix.
      const field = String(keysOf(visit)[0] ?? where);
      return { field, message: `${field} is nested too deep: at most ${MAX_DEPTH} levels of arrays and objects` };
    }
    // Pushed last to first, so that the walk, and the fault it reports, follow the document order.
    const entries = Object.entries(item);
    const list = Array.isArray(item);
    for (let i = entries.length - 1; i >= 0; i--) {
      const key = list ? Number(entries[i][0]) : entries[i][0];
      stack.push({ value: entries[i][1], depth: visit.depth + 1, key, parent: visit });
    }
  }
  return undefined;
}

/** A validation detail's field as clients read it: `seat_map.rows[0].seats`, `seat_ids[2]`. */
export const fieldPath = (path: (string | number)[]): string =>
  path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${key}` : key), '');
