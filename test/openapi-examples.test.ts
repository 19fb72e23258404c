import { randomBytes } from 'node:crypto';
import test from 'ava';
import Stripe from 'stripe';
import { DATABASES, sharedApp, type TestApp } from './helpers/app.js';
import { adminLogin, newUser } from './helpers/users.js';

const SECRET = `whsec_test_${randomBytes(16).toString('hex')}`;

interface Schema {
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | object;
  example?: Record<string, any>;
}
interface Operation {
  security: object[];
  requestBody?: { content: { 'application/json': { schema: Schema } } };
  responses: Record<string, object>;
}
type Document = { paths: Record<string, Record<string, Operation>> };

interface Example {
  route: string;
  path: string;
  method: string;
  operation: Operation;
  body: Record<string, any> | undefined;
}

/** Every route that takes a JSON body, with the example Swagger UI's "Try it out" sends for it. */
const bodyRoutes = (doc: Document): Example[] =>
  Object.entries(doc.paths).flatMap(([path, operations]) =>
    Object.entries(operations)
      .filter(([, operation]) => operation.requestBody)
      .map(([method, operation]) => ({
        route: `${method.toUpperCase()} ${path}`,
        path,
        method,
        operation,
        body: operation.requestBody?.content['application/json'].schema.example,
      })),
  );

/** Examples that name a record by its id (venue_id, user_id): no installation has that one, so they answer 404. */
const NAMES_A_RECORD: Record<string, string> = {
  'POST /api/admin/events': 'VENUE_NOT_FOUND',
  'POST /api/admin/credits': 'USER_NOT_FOUND',
  'POST /api/reserve': 'SEAT_NOT_FOUND',
  'POST /api/pay': 'ORDER_NOT_FOUND',
  'POST /api/verify-otp': 'ORDER_NOT_FOUND',
  'POST /api/transfer/confirm': 'TRANSFER_NOT_FOUND',
  'POST /api/transfer/dispute': 'TRANSFER_NOT_FOUND',
  'POST /api/transfer/reverse': 'TRANSFER_NOT_FOUND',
  'POST /api/transfer/resolve': 'TRANSFER_NOT_FOUND',
};

/**
 * Examples that no installation can accept as they are: a QR code is sealed with the
 * installation's own key and lives QR_TTL_SECONDS; a transfer names its two parties, and the
 * caller is neither. Their example must still pass the schema: the answer is the route's own
 * refusal, not VALIDATION_ERROR.
 */
const NEVER_LIVE: Record<string, { status: number; error_code: string }> = {
  'POST /api/verify': { status: 400, error_code: 'QR_INVALID' },
  'POST /api/transfer/initiate': { status: 403, error_code: 'FORBIDDEN' },
};

/** Sends a body as Swagger UI would, as the role the route needs (a 403 documented means admin). */
async function send(app: TestApp, example: Example, body = example.body) {
  const { operation, path } = example;
  const token = operation.responses['403']
    ? (await adminLogin(app)).token
    : operation.security.length > 0
      ? (await newUser(app)).token
      : undefined;
  const raw = JSON.stringify(body);
  // A webhook is trusted for its signature alone: sign it with the secret, as Stripe would.
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (path === '/api/webhooks/stripe') {
    headers['stripe-signature'] = Stripe.webhooks.generateTestHeaderString({ payload: raw, secret: SECRET });
  }
  const target = path.includes('{user_id}') ? path.replace('{user_id}', (await newUser(app)).userId) : path;
  return app.request(example.method.toUpperCase(), target, { token, raw, headers });
}

const successStatus = (operation: Operation) => Number(Object.keys(operation.responses).find((s) => s[0] === '2'));

for (const kind of DATABASES) {
  let doc: Document;
  const app = sharedApp(kind, {
    env: { SEED_DEMO: 'true', STRIPE_WEBHOOK_SECRET: SECRET },
    ready: async (a) => {
      doc = (await a.request('GET', '/openapi.json')).body;
    },
  });
  const name = (s: string) => `[${kind}] ${s}`;
  const example = (route: string) => {
    const found = bodyRoutes(doc).find((e) => e.route === route);
    if (!found) throw new Error(`${route} is not in the document`);
    return found;
  };

  test(name('every route that takes a body documents an example of it'), (t) => {
    const routes = bodyRoutes(doc);
    t.true(routes.length >= 9, `${routes.length} routes take a body`);
    for (const e of routes) t.not(e.body, undefined, e.route);
  });

  test(name('each body example is accepted as it is, by the role its route needs'), async (t) => {
    for (const e of bodyRoutes(doc)) {
      const res = await send(app, e);
      const missing = NAMES_A_RECORD[e.route];
      const detail = `${e.route}: ${res.status} ${JSON.stringify(res.body)}`;
      const refusal = NEVER_LIVE[e.route];
      if (refusal) {
        t.like(res, { status: refusal.status, body: { error_code: refusal.error_code } }, detail);
        continue;
      }
      t.not(res.status, 400, detail);
      if (missing) t.like(res, { status: 404, body: { error_code: missing } }, detail);
      else t.is(res.status, successStatus(e.operation), detail);
    }
  });

  test(name('the login example is a demo account and its token can top up'), async (t) => {
    const login = await app.request('POST', '/api/auth/login', { body: example('POST /api/auth/login').body });
    t.is(login.status, 200, JSON.stringify(login.body));
    t.is(login.body.data.user.role, 'customer');
    t.true(login.body.data.user.credit_balance > 0);
    const topup = await app.request('POST', '/api/credits/topup', {
      token: login.body.data.access_token,
      body: example('POST /api/credits/topup').body,
    });
    t.is(topup.status, 200, JSON.stringify(topup.body));
  });

  test(name('the examples that name a record are created with a real id in its place'), async (t) => {
    const venue = await send(app, example('POST /api/admin/venues'));
    t.is(venue.status, 201, JSON.stringify(venue.body));
    const events = example('POST /api/admin/events');
    const event = await send(app, events, { ...events.body, venue_id: venue.body.data.venue_id });
    t.is(event.status, 201, JSON.stringify(event.body));
    t.is(event.body.data.total_seats, 70);
    t.true(Date.parse(event.body.data.event_date) > Date.now(), 'the example event is in the future');

    const user = await newUser(app);
    const grants = example('POST /api/admin/credits');
    const grant = await send(app, grants, { ...grants.body, user_id: user.userId });
    t.is(grant.status, 201, JSON.stringify(grant.body));
  });

  test(
    name('the webhook documents the fields that decide crediting, and its example credits the top-up it names'),
    async (t) => {
      const webhook = example('POST /api/webhooks/stripe');
      const schema = webhook.operation.requestBody?.content['application/json'].schema as Schema;
      const intent = schema.properties?.data.properties?.object;
      t.like(intent?.properties, {
        id: { type: 'string' },
        amount_received: { type: 'integer' },
        currency: { type: 'string' },
        metadata: { properties: { user_id: { type: 'string', format: 'uuid' } } },
      });
      for (const s of [schema, schema.properties?.data, intent, intent?.properties?.metadata]) {
        t.not(s?.additionalProperties, false, 'the many other fields Stripe sends are allowed');
      }

      const user = await newUser(app);
      const topup = await app.request('POST', '/api/credits/topup', {
        token: user.token,
        body: example('POST /api/credits/topup').body,
      });
      const body = structuredClone(webhook.body) as Record<string, any>;
      body.data.object.id = topup.body.data.payment_intent_id;
      body.data.object.metadata.user_id = user.userId;
      const res = await send(app, webhook, body);
      t.is(res.status, 200, JSON.stringify(res.body));
      const balance = await app.request('GET', '/api/credits/balance', { token: user.token });
      t.is(balance.body.data.credit_balance, body.data.object.amount_received / 100);
    },
  );

  test(
    name('a signed webhook whose deciding fields have the wrong type answers 400 and credits nothing'),
    async (t) => {
      const webhook = example('POST /api/webhooks/stripe');
      const user = await newUser(app);
      const topup = await app.request('POST', '/api/credits/topup', { token: user.token, body: { amount: 50 } });
      for (const wrong of [
        { amount_received: '5000' },
        { amount_received: 50.5 },
        { currency: 1 },
        { metadata: 'x' },
      ]) {
        const body = structuredClone(webhook.body) as Record<string, any>;
        Object.assign(body.data.object, { id: topup.body.data.payment_intent_id, metadata: { user_id: user.userId } });
        Object.assign(body.data.object, wrong);
        const res = await send(app, webhook, body);
        t.is(res.status, 400, JSON.stringify(wrong));
        t.is(res.body.error_code, 'VALIDATION_ERROR', JSON.stringify(wrong));
      }
      const balance = await app.request('GET', '/api/credits/balance', { token: user.token });
      t.is(balance.body.data.credit_balance, 0);
    },
  );
}
