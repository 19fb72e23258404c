import Joi from 'joi';
import { money, uuid } from '../../kernel/schemas.js';
import { LEDGER_TYPES, ROLES } from './user.entities.js';

const email = Joi.string().trim().email({ tlds: false }).max(254).lowercase();
const password = Joi.string().min(8).max(128);
const E164 = /^\+[1-9]\d{6,14}$/;

export const registerBody = Joi.object({
  email: email.required(),
  phone: Joi.string()
    .pattern(E164)
    .required()
    .messages({ 'string.pattern.base': 'phone must be E.164, e.g. +6591234567' }),
  password: password.required(),
  full_name: Joi.string().trim().min(1).max(200).allow(null),
});

export const loginBody = Joi.object({ email: email.required(), password: Joi.string().min(1).max(128).required() });

export const logoutBody = Joi.object({ refresh_token: Joi.string().max(4096) });

export const userIdParams = Joi.object({ user_id: uuid().required() });

export const adminUsersQuery = Joi.object({ email: Joi.string().trim().max(254).allow('') });

export const adminUserPatch = Joi.object({
  role: Joi.string().valid(...ROLES),
  // JSON has booleans: the strings "true" and "false" are a client bug, not a flag.
  is_flagged: Joi.boolean().strict(),
}).min(1);

export const grantBody = Joi.object({
  user_id: uuid().required(),
  amount: money({ max: 1_000_000 }).required(),
  reason: Joi.string().trim().min(1).max(200).required(),
});

export const topupBody = Joi.object({ amount: money({ max: 10_000 }).required() });

export const userView = Joi.object({
  user_id: Joi.string().uuid(),
  email: Joi.string(),
  phone: Joi.string(),
  full_name: Joi.string().allow(null),
  role: Joi.string().valid(...ROLES),
  credit_balance: Joi.number(),
  is_flagged: Joi.boolean(),
  created_at: Joi.string().isoDate(),
});

export const tokenView = Joi.object({
  access_token: Joi.string(),
  refresh_token: Joi.string(),
  token_type: Joi.string().valid('Bearer'),
  expires_in: Joi.number().integer(),
  user: Joi.object({
    user_id: Joi.string().uuid(),
    email: Joi.string(),
    role: Joi.string(),
    credit_balance: Joi.number(),
  }),
});

export const balanceView = Joi.object({
  user_id: Joi.string().uuid(),
  credit_balance: Joi.number(),
  frozen_credits: Joi.number(),
});

export const transactionView = Joi.object({
  transaction_id: Joi.string().uuid(),
  type: Joi.string().valid(...LEDGER_TYPES),
  amount: Joi.number(),
  balance_after: Joi.number(),
  reference_id: Joi.string().allow(null),
  created_at: Joi.string().isoDate(),
});

export const grantView = Joi.object({
  transaction_id: Joi.string().uuid(),
  user_id: Joi.string().uuid(),
  type: Joi.string().valid('GRANT'),
  amount: Joi.number(),
  credit_balance: Joi.number(),
  reference_id: Joi.string(),
});

export const topupView = Joi.object({
  payment_intent_id: Joi.string(),
  client_secret: Joi.string().description('Hand to Stripe.js (or the fake provider) to complete the payment'),
  amount: Joi.number(),
  currency: Joi.string().length(3),
});

/** The shape every Stripe event has; the signature, checked first, is what makes it trusted. */
export const stripeEventBody = Joi.object({
  id: Joi.string().required(),
  type: Joi.string().required().example('payment_intent.succeeded'),
  data: Joi.object({ object: Joi.object({ id: Joi.string().required() }).unknown().required() })
    .unknown()
    .required(),
}).unknown();

export const webhookReceivedView = Joi.object({ received: Joi.boolean().valid(true) });
