import type { Middleware } from 'koa';
import type Stripe from 'stripe';
import type { Config } from '../../kernel/config.js';
import { type RateLimits, rateLimit } from '../../kernel/ratelimit.js';
import { createApiRouter } from '../../kernel/routing.js';
import { credits } from '../../kernel/schemas.js';
import { type Payments, verifyWebhook } from './payments.js';
import * as s from './user.schemas.js';

/** Top-ups through the payment provider, and the webhook that alone turns them into credits. */
export function paymentRoutes(config: Config, payments: Payments, limits: RateLimits) {
  const api = createApiRouter('user', 'Payments');

  // Runs before body validation, so that an unsigned request is refused as such whatever it contains.
  const signed: Middleware = (ctx, next) => {
    ctx.state.stripeEvent = verifyWebhook(
      config.stripeWebhookSecret,
      ctx.request.rawBody ?? '',
      ctx.get('stripe-signature') || undefined,
    );
    return next();
  };

  api.route(
    'post',
    '/api/credits/topup',
    {
      summary: 'Start a top-up: create a payment intent with the payment provider',
      description:
        'Credits are added only when the provider confirms the payment through `POST /api/webhooks/stripe`; ' +
        'complete the payment with the returned `client_secret`.',
      access: 'user',
      status: 200,
      body: s.topupBody,
      response: s.topupView,
      errors: ['RATE_LIMITED', 'SERVICE_UNAVAILABLE'],
      before: [rateLimit(limits, config, 'topup')],
    },
    async ({ principal, body }) => {
      const intent = await payments.topup(principal.userId, body.amount, config.paymentCurrency);
      return {
        payment_intent_id: intent.id,
        client_secret: intent.clientSecret,
        amount: credits(intent.amount),
        currency: intent.currency,
      };
    },
  );

  api.route(
    'post',
    '/api/webhooks/stripe',
    {
      summary: 'Stripe-format webhook: a signed payment_intent.succeeded credits its creator once',
      description:
        'The `Stripe-Signature` header must verify over the raw body with the webhook secret (5-minute tolerance). ' +
        'Redeliveries of a succeeded intent credit nothing more; other event types are acknowledged and ignored.',
      access: 'public',
      status: 200,
      body: s.stripeEventBody,
      response: s.webhookReceivedView,
      errors: ['INVALID_SIGNATURE'],
      before: [signed],
    },
    async ({ ctx }) => {
      const event = ctx.state.stripeEvent as Stripe.Event;
      if (event.type === 'payment_intent.succeeded') await payments.succeeded(event.data.object);
      return { received: true };
    },
  );

  return api;
}
