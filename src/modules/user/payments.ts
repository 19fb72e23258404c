import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import type { Config } from '../../kernel/config.js';
import { AppError } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';
import type { Database } from '../../kernel/persistence.js';
import type { Ledger } from './ledger.js';

/** A payment intent as the provider made it; amounts in cents. */
export interface CreatedIntent {
  id: string;
  clientSecret: string;
  amount: number;
  currency: string;
}

export interface PaymentProvider {
  createIntent(input: { userId: string; amount: number; currency: string }): Promise<CreatedIntent>;
}

/** Makes intents locally; only a signed webhook ever completes one, exactly as with Stripe. */
export function fakeProvider(): PaymentProvider {
  return {
    async createIntent({ amount, currency }) {
      const id = `pi_fake_${randomBytes(12).toString('hex')}`;
      return { id, clientSecret: `${id}_secret_${randomBytes(16).toString('hex')}`, amount, currency };
    },
  };
}

/** STRIPE_API_URL moves the client to another host (a local stand-in in tests); Stripe keeps its /v1 paths. */
function endpoint(apiUrl: string): Stripe.StripeConfig {
  if (!apiUrl) return {};
  const url = new URL(apiUrl);
  const protocol = url.protocol === 'http:' ? 'http' : 'https';
  return { host: url.hostname, port: url.port || (protocol === 'http' ? 80 : 443), protocol };
}

export function stripeProvider(config: Config, log: Logger): PaymentProvider {
  // A top-up request waits on this call, so a hung provider must fail well before Stripe's 80 s default.
  const stripe = new Stripe(config.stripeSecretKey, { ...endpoint(config.stripeApiUrl), timeout: 10_000 });
  return {
    async createIntent({ userId, amount, currency }) {
      try {
        const intent = await stripe.paymentIntents.create({
          amount,
          currency,
          metadata: { user_id: userId },
          automatic_payment_methods: { enabled: true },
        });
        if (!intent.client_secret) throw new Error(`intent ${intent.id} came back without a client secret`);
        return { id: intent.id, clientSecret: intent.client_secret, amount: intent.amount, currency: intent.currency };
      } catch (err) {
        log.warn({ err }, 'stripe refused or failed to create a payment intent');
        throw new AppError('SERVICE_UNAVAILABLE', 'The payment provider is unavailable; try again shortly.');
      }
    },
  };
}

export const createProvider = (config: Config, log: Logger): PaymentProvider =>
  config.paymentProvider === 'stripe' ? stripeProvider(config, log) : fakeProvider();

/**
 * Checks a Stripe-format webhook (signature over the raw body, 5-minute tolerance) for every
 * provider, so that the fake one is completed exactly the way a real payment would be.
 */
export function verifyWebhook(secret: string, payload: string, header: string | undefined): Stripe.Event {
  if (!header) throw new AppError('INVALID_SIGNATURE', 'The Stripe-Signature header is missing.');
  try {
    return Stripe.webhooks.constructEvent(payload, header, secret);
  } catch (err) {
    if (err instanceof Stripe.errors.StripeSignatureVerificationError) {
      throw new AppError('INVALID_SIGNATURE', 'The webhook signature does not verify.');
    }
    throw new AppError('VALIDATION_ERROR', 'The webhook payload is not a JSON event.');
  }
}

interface IntentRow {
  user_id: string;
  amount: number;
  currency: string;
}

/** Why a succeeded intent must not be credited, if it must not. */
function whyIgnored(intent: Stripe.PaymentIntent, row: IntentRow | undefined): string | undefined {
  if (!row) return 'unknown payment intent';
  if (intent.metadata?.user_id !== row.user_id) return 'metadata.user_id differs from the user who created it';
  if (intent.currency !== row.currency) return 'currency differs from the recorded intent';
  if (!Number.isSafeInteger(intent.amount_received) || intent.amount_received <= 0) {
    return 'amount_received is not a positive number of cents';
  }
  return undefined;
}

/** Top-up intents: recorded when made, credited once when the provider says they succeeded. */
export function createPayments(db: Database, provider: PaymentProvider, ledger: Ledger, log: Logger) {
  const intents = db.table('payment_intents');

  return {
    async topup(userId: string, amount: number, currency: string): Promise<CreatedIntent> {
      const intent = await provider.createIntent({ userId, amount, currency });
      await db.all(
        `insert into ${intents} (id, user_id, amount, currency, status, created_at) values (?, ?, ?, ?, 'requires_payment', ?)`,
        [intent.id, userId, intent.amount, intent.currency, db.time(new Date())],
      );
      return intent;
    },

    /**
     * Credits the user who created the intent, whatever the event claims. The ledger key makes
     * redeliveries (even concurrent ones) replay the first credit; marking the row afterwards is
     * conditional and repeated on every delivery, so a crash between the two heals on the next one.
     */
    async succeeded(intent: Stripe.PaymentIntent): Promise<void> {
      const [row] = await db.all<IntentRow>(`select user_id, amount, currency from ${intents} where id = ?`, [
        intent.id,
      ]);
      const fault = whyIgnored(intent, row);
      if (fault || !row) {
        log.warn({ payment_intent_id: intent.id }, `payment_intent.succeeded ignored: ${fault}`);
        return;
      }
      if (intent.amount_received !== Number(row.amount)) {
        log.warn(
          { payment_intent_id: intent.id, amount: Number(row.amount), amount_received: intent.amount_received },
          'payment intent received a different amount than requested; crediting what was received',
        );
      }
      await ledger.credit({
        userId: row.user_id,
        amount: intent.amount_received,
        key: `stripe:${intent.id}`,
        type: 'TOPUP',
        referenceId: intent.id,
      });
      await db.all(`update ${intents} set status = 'succeeded', credited_at = ? where id = ? and credited_at is null`, [
        db.time(new Date()),
        intent.id,
      ]);
    },
  };
}

export type Payments = ReturnType<typeof createPayments>;
