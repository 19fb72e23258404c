import Joi from 'joi';
import { money, uuid } from '../../kernel/schemas.js';
import { LEDGER_TYPES, ROLES } from './user.entities.js';
import { DEMO_USERS } from './user.seed.js';

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
}).example({ email: 'new.fan@example.com', phone: '+6591234567', password: 'new-fan-pass-1', full_name: 'New Fan' });

// Alice, a demo customer with credits: the token Swagger UI gets can be spent at once.
const alice = DEMO_USERS[2];
export const loginBody = Joi.object({
  email: email.required(),
  password: Joi.string().min(1).max(128).required(),
}).example({ email: alice.email, password: alice.password });

export const logoutBody = Joi.object({ refresh_token: Joi.string().max(4096) }).example({});

export const userIdParams = Joi.object({ user_id: uuid().required() });

export const adminUsersQuery = Joi.object({ email: Joi.string().trim().max(254).allow('') });

export const adminUserPatch = Joi.object({
  role: Joi.string().valid(...ROLES),
  // JSON has booleans: the strings "true" and "false" are a client bug, not a flag.
  is_flagged: Joi.boolean().strict(),
})
  .min(1)
  .example({ is_flagged: true });

export const grantBody = Joi.object({
  user_id: uuid().required(),
  amount: money({ max: 1_000_000 }).required(),
  reason: Joi.string().trim().min(1).max(200).required(),
}).example({ user_id: '3f1c9a52-8d4e-4b7a-9c2f-6e5d4a3b2c1d', amount: 100, reason: 'Welcome bonus' });

export const topupBody = Joi.object({ amount: money({ max: 10_000 }).required() }).example({ amount: 50 });

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

/**
 * A Stripe event: the signature, checked first, is what makes it trusted. Documented are the
 * fields that decide whether a payment_intent.succeeded adds credits; Stripe sends many more,
 * all allowed. metadata.user_id is not held to the UUID format: metadata of other objects is
 * free-form, and a signed event refused with a 4xx would be redelivered for days.
 */
export const stripeEventBody = Joi.object({
  id: Joi.string().required().description('The event id, evt_…'),
  type: Joi.string().required().description('Only payment_intent.succeeded adds credits; other types are acknowledged'),
  data: Joi.object({
    object: Joi.object({
      id: Joi.string().required().description('The payment_intent_id that POST /api/credits/topup returned'),
      amount_received: Joi.number().strict().integer().min(0).description('Cents received: what is credited'),
      currency: Joi.string().description('Must equal the currency of the top-up'),
      metadata: Joi.object({
        user_id: Joi.string()
          .description('Must be the user who started the top-up')
          .meta({ swagger: { format: 'uuid' } }),
      }).unknown(),
    })
      .unknown()
      .required(),
  })
    .unknown()
    .required(),
})
  .unknown()
  .example({
    id: 'evt_3QExampleWebhook',
    object: 'event',
    type: 'payment_intent.succeeded',
    created: 1_780_000_000,
    livemode: false,
    data: {
      object: {
        id: 'pi_3QExampleIntent',
        object: 'payment_intent',
        amount: 5000,
        amount_received: 5000,
        currency: 'sgd',
        status: 'succeeded',
        metadata: { user_id: '3f1c9a52-8d4e-4b7a-9c2f-6e5d4a3b2c1d' },
      },
    },
  });

export const webhookReceivedView = Joi.object({ received: Joi.boolean().valid(true) });
