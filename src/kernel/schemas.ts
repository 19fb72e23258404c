import Joi from 'joi';

/** Building blocks for route schemas; validated values come out in the types the code uses. */
export const uuid = () =>
  Joi.string().guid({ version: ['uuidv1', 'uuidv2', 'uuidv3', 'uuidv4', 'uuidv5', 'uuidv7', 'uuidv8'] });

const CENT_EPSILON = 1e-9;

/**
 * Credits as JSON numbers with at most two decimals; the validated value is integer cents, so
 * that no code after the edge ever sees floating-point money.
 */
export const money = () =>
  Joi.number()
    .strict()
    .custom((value: number, helpers) => {
      const cents = Math.round(value * 100);
      if (Math.abs(value * 100 - cents) > CENT_EPSILON) return helpers.error('number.cents');
      if (!Number.isSafeInteger(cents)) return helpers.error('number.unsafe');
      return cents;
    }, 'credits to cents')
    .messages({ 'number.cents': '{{#label}} must be a whole number of cents (at most two decimals)' })
    .meta({ multipleOf: 0.01 });

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
