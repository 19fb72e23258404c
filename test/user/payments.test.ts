import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import Stripe from 'stripe';
import { startApp, TARGETS, type Target, type TestApp } from '../helpers/app.js';
import { ledgerSum } from '../helpers/ledger.js';
import { standIn } from '../helpers/stand-in.js';
import { newUser, type TestUser } from '../helpers/users.js';

const SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;

const boot = (kind: Target, env: Record<string, string> = {}) =>
  startApp(kind, { STRIPE_WEBHOOK_SECRET: SECRET, PAYMENT_PROVIDER: 'fake', ...env });

async function topup(app: TestApp, user: TestUser, amount: number) {
  const res = await app.request('POST', '/api/credits/topup', { token: user.token, body: { amount } });
  if (res.status !== 200) throw new Error(`top-up failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data as { payment_intent_id: string; client_secret: string; amount: number; currency: string };
}

/** A Stripe event about one payment intent; amounts in cents, as Stripe sends them. */
function event(
  type: string,
  intent: { id: string; cents: number; userId: string; currency?: string; received?: number },
): string {
  return JSON.stringify({
    id: `evt_${randomBytes(12).toString('hex')}`,
    object: 'event',
    type,
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    data: {
      object: {
        id: intent.id,
        object: 'payment_intent',
        amount: intent.cents,
        amount_received: intent.received ?? intent.cents,
        currency: intent.currency ?? 'sgd',
        status: 'succeeded',
        metadata: { user_id: intent.userId },
      },
    },
  });
}

const sign = (payload: string, options: { secret?: string; timestamp?: number } = {}) =>
  Stripe.webhooks.generateTestHeaderString({ payload, secret: options.secret ?? SECRET, timestamp: options.timestamp });

/** Posts a webhook the way Stripe does: raw JSON with a charset, signed unless told otherwise. */
const deliver = (app: TestApp, payload: string, signature: string | null = sign(payload)) =>
  app.request('POST', '/api/webhooks/stripe', {
    raw: payload,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      ...(signature === null ? {} : { 'stripe-signature': signature }),
    },
  });

async function balance(app: TestApp, user: TestUser): Promise<number> {
  const res = await app.request('GET', '/api/credits/balance', { token: user.token });
  return res.body.data.credit_balance;
}

async function transactions(app: TestApp, user: TestUser) {
  const res = await app.request('GET', '/api/credits/transactions', { token: user.token });
  return res.body.data as { type: string; amount: number; reference_id: string | null }[];
}

const userDb = (app: TestApp) => app.kernel.databases.get('user')!;

async function intentRow(app: TestApp, id: string) {
  const db = userDb(app);
  const [row] = await db.all<{
    user_id: string;
    amount: number;
    currency: string;
    status: string;
    credited_at: unknown;
  }>(`select user_id, amount, currency, status, credited_at from ${db.table('payment_intents')} where id = ?`, [id]);
  return row;
}

async function intentCount(app: TestApp): Promise<number> {
  const db = userDb(app);
  const [row] = await db.all<{ n: number }>(`select count(*) as n from ${db.table('payment_intents')}`);
  return Number(row.n);
}

for (const kind of TARGETS) {
  test(`[${kind}] a top-up creates a payment intent awaiting payment and credits nothing`, async (t) => {
    const app = await boot(kind);
    t.teardown(() => app.close());
    const u = await newUser(app);

    const intent = await topup(app, u, 25.5);

    t.regex(intent.payment_intent_id, /^pi_fake_[0-9a-f]+$/);
    t.true(intent.client_secret.startsWith(`${intent.payment_intent_id}_secret_`));
    t.is(intent.amount, 25.5);
    t.is(intent.currency, 'sgd');
    const row = await intentRow(app, intent.payment_intent_id);
    t.like(row, { user_id: u.userId, currency: 'sgd', status: 'requires_payment', credited_at: null });
    t.is(Number(row.amount), 2550);
    t.is(await balance(app, u), 0);
    t.deepEqual(await transactions(app, u), []);
  });

  test(`[${kind}] a signed payment_intent.succeeded credits amount_received once as a TOPUP`, async (t) => {
    const app = await boot(kind);
    t.teardown(() => app.close());
    const u = await newUser(app);
    const intent = await topup(app, u, 25.5);

    const res = await deliver(
      app,
      event('payment_intent.succeeded', { id: intent.payment_intent_id, cents: 2550, userId: u.userId }),
    );

    t.is(res.status, 200);
    t.deepEqual(res.body, { success: true, data: { received: true } });
    t.is(await balance(app, u), 25.5);
    const ledger = await transactions(app, u);
    t.is(ledger.length, 1);
    t.like(ledger[0], { type: 'TOPUP', amount: 25.5, reference_id: intent.payment_intent_id });
    t.deepEqual(await ledgerSum(app, u.userId), { sum: 2550, rows: 1, balance: 2550, frozen: 0 });
    const row = await intentRow(app, intent.payment_intent_id);
    t.is(row.status, 'succeeded');
    t.truthy(row.credited_at);
  });

  test(`[${kind}] redelivery, one by one and ten at once, credits the intent once`, async (t) => {
    const app = await boot(kind);
    t.teardown(() => app.close());
    const u = await newUser(app);
    const intent = await topup(app, u, 40);
    const payload = event('payment_intent.succeeded', { id: intent.payment_intent_id, cents: 4000, userId: u.userId });

    const burst = await Promise.all(Array.from({ length: 10 }, () => deliver(app, payload)));
    const again = [await deliver(app, payload), await deliver(app, payload)];
    // Stripe may also send a second event (a new event id) about the same intent.
    const sibling = await deliver(
      app,
      event('payment_intent.succeeded', { id: intent.payment_intent_id, cents: 4000, userId: u.userId }),
    );

    for (const res of [...burst, ...again, sibling]) t.deepEqual(res.body, { success: true, data: { received: true } });
    t.is(await balance(app, u), 40);
    t.deepEqual(await ledgerSum(app, u.userId), { sum: 4000, rows: 1, balance: 4000, frozen: 0 });
  });

  test(`[${kind}] bad, missing, wrong-secret and stale signatures answer 400 INVALID_SIGNATURE and credit nothing (a signed non-event 400 VALIDATION_ERROR)`, async (t) => {
    const app = await boot(kind);
    t.teardown(() => app.close());
    const u = await newUser(app);
    const intent = await topup(app, u, 10);
    const payload = event('payment_intent.succeeded', { id: intent.payment_intent_id, cents: 1000, userId: u.userId });
    const now = Math.floor(Date.now() / 1000);

    const attempts: [string, string, string | null][] = [
      ['garbage header', payload, 't=1,v1=deadbeef'],
      ['tampered body', payload.replace('"amount_received":1000', '"amount_received":999999'), sign(payload)],
      ['missing header', payload, null],
      ['empty header', payload, ''],
      ['wrong secret', payload, sign(payload, { secret: 'whsec_not_ours_0123456789' })],
      ['stale timestamp', payload, sign(payload, { timestamp: now - 301 })],
    ];
    for (const [why, body, signature] of attempts) {
      const res = await deliver(app, body, signature);
      t.is(res.status, 400, why);
      t.is(res.body.success, false, why);
      t.is(res.body.error_code, 'INVALID_SIGNATURE', why);
    }

    const notAnEvent = JSON.stringify({ type: 'payment_intent.succeeded', data: {} });
    const shapeless = await deliver(app, notAnEvent, sign(notAnEvent));
    t.is(shapeless.status, 400);
    t.is(shapeless.body.error_code, 'VALIDATION_ERROR');

    t.is(await balance(app, u), 0);
    t.deepEqual(await ledgerSum(app, u.userId), { sum: 0, rows: 0, balance: 0, frozen: 0 });
    t.is((await intentRow(app, intent.payment_intent_id)).status, 'requires_payment');
  });

  test(`[${kind}] other event types are acknowledged and change nothing`, async (t) => {
    const app = await boot(kind);
    t.teardown(() => app.close());
    const u = await newUser(app);
    const intent = await topup(app, u, 10);
    const about = { id: intent.payment_intent_id, cents: 1000, userId: u.userId };

    for (const type of ['payment_intent.created', 'payment_intent.payment_failed', 'charge.succeeded']) {
      const res = await deliver(app, event(type, about));
      t.is(res.status, 200, type);
      t.deepEqual(res.body, { success: true, data: { received: true } }, type);
    }

    t.deepEqual(await ledgerSum(app, u.userId), { sum: 0, rows: 0, balance: 0, frozen: 0 });
    t.is((await intentRow(app, intent.payment_intent_id)).status, 'requires_payment');
  });

  test(`[${kind}] a success for an unknown intent or naming another user is acknowledged and credits no one`, async (t) => {
    const app = await boot(kind);
    t.teardown(() => app.close());
    const owner = await newUser(app);
    const other = await newUser(app);
    const intent = await topup(app, owner, 10);

    const unknown = await deliver(
      app,
      event('payment_intent.succeeded', { id: 'pi_never_made_here', cents: 1000, userId: other.userId }),
    );
    const hijack = await deliver(
      app,
      event('payment_intent.succeeded', { id: intent.payment_intent_id, cents: 1000, userId: other.userId }),
    );
    const wrongCurrency = await deliver(
      app,
      event('payment_intent.succeeded', {
        id: intent.payment_intent_id,
        cents: 1000,
        userId: owner.userId,
        currency: 'usd',
      }),
    );

    for (const res of [unknown, hijack, wrongCurrency]) {
      t.is(res.status, 200);
      t.deepEqual(res.body.data, { received: true });
    }
    t.deepEqual(await ledgerSum(app, owner.userId), { sum: 0, rows: 0, balance: 0, frozen: 0 });
    t.deepEqual(await ledgerSum(app, other.userId), { sum: 0, rows: 0, balance: 0, frozen: 0 });
    t.is((await intentRow(app, intent.payment_intent_id)).status, 'requires_payment');
  });

  test(`[${kind}] top-up amounts outside 0 < amount ≤ 10 000 or with fractions of a cent answer 400 and record nothing; the bounds are in credits`, async (t) => {
    const app = await boot(kind);
    t.teardown(() => app.close());
    const u = await newUser(app);

    const bad: unknown[] = [{ amount: 0 }, { amount: -5 }, { amount: 10_000.01 }, { amount: 1.005 }, { amount: '10' }];
    bad.push({}, { amount: null }, { amount: 10, user_id: u.userId });
    for (const body of bad) {
      const res = await app.request('POST', '/api/credits/topup', { token: u.token, body });
      t.is(res.status, 400, JSON.stringify(body));
      t.is(res.body.error_code, 'VALIDATION_ERROR', JSON.stringify(body));
      t.true(Array.isArray(res.body.details), JSON.stringify(body));
    }
    t.is(await intentCount(app), 0);

    for (const [credits, cents] of [
      [0.01, 1],
      [100.01, 10_001],
      [10_000, 1_000_000],
    ]) {
      const intent = await topup(app, u, credits);
      t.is(intent.amount, credits);
      t.is(Number((await intentRow(app, intent.payment_intent_id)).amount), cents);
    }
  });

  test(`[${kind}] a top-up without a token answers 401 and records nothing`, async (t) => {
    const app = await boot(kind);
    t.teardown(() => app.close());

    const res = await app.request('POST', '/api/credits/topup', { body: { amount: 10 } });

    t.is(res.status, 401);
    t.is(res.body.error_code, 'UNAUTHORIZED');
    t.is(await intentCount(app), 0);
  });

  test(`[${kind}] top-ups beyond RATE_LIMIT_PER_MINUTE answer 429 RATE_LIMITED`, async (t) => {
    const app = await boot(kind, { RATE_LIMIT_PER_MINUTE: '2' });
    t.teardown(() => app.close());
    const u = await newUser(app);

    await topup(app, u, 1);
    await topup(app, u, 1);
    const res = await app.request('POST', '/api/credits/topup', { token: u.token, body: { amount: 1 } });

    t.is(res.status, 429);
    t.is(res.body.error_code, 'RATE_LIMITED');
    t.is(await intentCount(app), 2);
  });
}

interface StripeCall {
  method: string;
  path: string;
  authorization: string;
  form: URLSearchParams;
}

/** A stand-in for Stripe's API at the network edge: `POST /v1/payment_intents` only. */
async function fakeStripeApi(t: ExecutionContext, fail = false) {
  const calls: StripeCall[] = [];
  const url = await standIn(t, (req, raw) => {
    const form = new URLSearchParams(raw);
    calls.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization ?? '', form });
    if (fail || req.method !== 'POST' || req.url !== '/v1/payment_intents') {
      return {
        status: fail ? 400 : 404,
        body: { error: { type: 'invalid_request_error', message: 'refused by the test' } },
      };
    }
    const id = `pi_${randomBytes(12).toString('hex')}`;
    return {
      status: 200,
      body: {
        id,
        object: 'payment_intent',
        amount: Number(form.get('amount')),
        currency: form.get('currency'),
        client_secret: `${id}_secret_${randomBytes(8).toString('hex')}`,
        status: 'requires_payment_method',
        metadata: { user_id: form.get('metadata[user_id]') },
      },
    };
  });
  return { calls, url };
}

/** The app on the `stripe` provider, pointed at a local stand-in for Stripe's API. */
async function withStripe(t: ExecutionContext, kind: Target, failing = false) {
  const api = await fakeStripeApi(t, failing);
  const app = await boot(kind, {
    PAYMENT_PROVIDER: 'stripe',
    STRIPE_SECRET_KEY: 'sk_test_local_stand_in',
    STRIPE_API_URL: api.url,
  });
  t.teardown(() => app.close());
  return { api, app };
}

for (const kind of TARGETS) {
  test(`[${kind}] the stripe provider creates the intent at Stripe and its signed success credits the creator`, async (t) => {
    const { api, app } = await withStripe(t, kind);
    const u = await newUser(app);

    const intent = await topup(app, u, 12.34);

    t.is(api.calls.length, 1);
    const [call] = api.calls;
    t.is(call.authorization, 'Bearer sk_test_local_stand_in');
    t.is(call.form.get('amount'), '1234');
    t.is(call.form.get('currency'), 'sgd');
    t.is(call.form.get('metadata[user_id]'), u.userId);
    t.is(call.form.get('automatic_payment_methods[enabled]'), 'true');
    t.regex(intent.payment_intent_id, /^pi_[0-9a-f]+$/);
    t.like(intent, { amount: 12.34, currency: 'sgd' });
    t.is(await balance(app, u), 0);

    const res = await deliver(
      app,
      event('payment_intent.succeeded', { id: intent.payment_intent_id, cents: 1234, userId: u.userId }),
    );
    t.is(res.status, 200);
    t.is(await balance(app, u), 12.34);
    t.deepEqual(await ledgerSum(app, u.userId), { sum: 1234, rows: 1, balance: 1234, frozen: 0 });
  });

  test(`[${kind}] a payment provider that fails answers 503 SERVICE_UNAVAILABLE and records nothing`, async (t) => {
    const { api, app } = await withStripe(t, kind, true);
    const u = await newUser(app);

    const res = await app.request('POST', '/api/credits/topup', { token: u.token, body: { amount: 10 } });

    t.is(res.status, 503);
    t.is(res.body.error_code, 'SERVICE_UNAVAILABLE');
    t.true(api.calls.length >= 1);
    t.is(await intentCount(app), 0);
  });
}

test('the OpenAPI document describes top-up and the webhook with their error codes', async (t) => {
  const app = await boot('sqlite');
  t.teardown(() => app.close());

  const doc = (await app.request('GET', '/openapi.json')).body;
  const topupOp = doc.paths['/api/credits/topup'].post;
  const webhookOp = doc.paths['/api/webhooks/stripe'].post;

  t.deepEqual(topupOp.security, [{ bearerAuth: [] }]);
  t.like(topupOp.requestBody.content['application/json'].schema.properties.amount, {
    minimum: 0,
    exclusiveMinimum: true,
    maximum: 10_000,
    multipleOf: 0.01,
  });
  t.regex(topupOp.responses['429'].description, /RATE_LIMITED/);
  t.regex(topupOp.responses['503'].description, /SERVICE_UNAVAILABLE/);
  t.truthy(topupOp.responses['200']);
  t.deepEqual(webhookOp.security, []);
  t.regex(webhookOp.responses['400'].description, /INVALID_SIGNATURE/);
  t.truthy(webhookOp.responses['200']);
});
