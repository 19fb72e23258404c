import Joi from 'joi';

/** Building blocks for route schemas; validated values come out in the types the code uses. */

/**
 * A UUID in its canonical 8-4-4-4-12 form, lower-cased. joi alone also takes `{…}`, `(…)`, undashed
 * and colon forms, which PostgreSQL reads differently from SQLite (or refuses with an error).
 */
export const uuid = () =>
  Joi.string()
    .guid({ version: ['uuidv1', 'uuidv2', 'uuidv3', 'uuidv4', 'uuidv5', 'uuidv7', 'uuidv8'] })
    .custom((value: string, helpers) =>
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)
        ? value.toLowerCase()
        : helpers.error('string.guid'),
    );

const CENT_EPSILON = 1e-9;

/**
 * A positive amount of credits, at most `max`, as a JSON number with at most two decimals. The
 * bounds are checked in credits; the validated value is integer cents, so that no code after the
 * edge ever sees floating-point money.
 */
export const money = ({ max }: { max: number }) =>
  Joi.number()
    .strict()
    .greater(0)
    .max(max)
    .custom((value: number, helpers) => {
      const cents = Math.round(value * 100);
      if (Math.abs(value * 100 - cents) > CENT_EPSILON) return helpers.error('number.cents');
      return cents;
    }, 'credits to cents')
    .messages({ 'number.cents': '{{#label}} must be a whole number of cents (at most two decimals)' })
    .meta({
      swagger: { type: 'number', minimum: 0, exclusiveMinimum: true, maximum: max, multipleOf: 0.01 },
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
