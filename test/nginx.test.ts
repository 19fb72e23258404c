import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { DATABASES, type DbKind, request } from './helpers/app.js';
import { remoteApp } from './helpers/crash.js';
import { createEvent } from './helpers/events.js';
import { NGINX, startNginx } from './helpers/nginx.js';
import { SPLIT_ADMIN, type Split, startSplit } from './helpers/split.js';
import { grant, login, newUser, type TestUser } from './helpers/users.js';

/**
 * The shipped reverse proxy, deploy/nginx.conf, run by Debian's nginx in front of the four slices
 * of `npm run start:split`: clients use one base URL for every route, Swagger UI and the merged
 * OpenAPI document; the edge keeps /internal and /metrics to itself, forwards the correlation id
 * (every slice a request touches logs it), and answers 503 in the envelope for a slice that is down.
 */

/** The last code the user slice logged for a user and a reference (development delivery to the log). */
function loggedCode(split: Split, userId: string, referenceId: string): string | undefined {
  const lines = split.server
    .output()
    .split('\n')
    .filter((l) => l.startsWith('user ') && l.includes('"OTP code'));
  const codes = lines
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as { user_id: string; reference_id: string; code: string })
    .filter((m) => m.user_id === userId && m.reference_id === referenceId);
  return codes.at(-1)?.code;
}

async function codeOf(split: Split, user: TestUser, referenceId: string) {
  for (let i = 0; i < 100; i++) {
    const code = loggedCode(split, user.userId, referenceId);
    if (code) return code;
    await sleep(50);
  }
  throw new Error(`no code logged for ${user.email}`);
}

async function throughTheEdge(t: ExecutionContext, kind: DbKind) {
  // OTP_DELIVERY=log: the codes come from the user slice's log lines.
  const split = await startSplit(t, kind, { NODE_ENV: 'development', SEED_DEMO: 'false', OTP_DELIVERY: 'log' });
  const { edge, dir } = await startNginx(t, split.ports, { openapi: true });
  const app = remoteApp(edge);

  // Every module's routes through one base URL.
  const admin = await login(app, SPLIT_ADMIN.email, SPLIT_ADMIN.password);
  const [seller, buyer] = [await newUser(app), await newUser(app)];
  for (const u of [seller, buyer]) await grant(app, admin, u.userId, 500);
  const event = await createEvent(app, admin);
  const seat = event.seats[0].seat_id;
  const correlation = `edge-${Date.now()}`;
  const held = await request(edge, 'POST', '/api/reserve', {
    token: seller.token,
    body: { seat_id: seat },
    headers: { 'x-correlation-id': correlation },
  });
  t.is(held.status, 200, JSON.stringify(held.body));
  t.is(held.headers.get('x-correlation-id'), correlation, 'the edge answers with the request’s correlation id');
  const paid = await request(edge, 'POST', '/api/pay', {
    token: seller.token,
    body: { order_id: held.body.data.order_id },
  });
  t.is(paid.status, 200, JSON.stringify(paid.body));
  t.like((await request(edge, 'GET', `/api/orders/${held.body.data.order_id}`, { token: seller.token })).body.data, {
    status: 'CONFIRMED',
  });
  const qr = await request(edge, 'GET', `/api/tickets/${seat}/qr`, { token: seller.token });
  t.is(qr.status, 200);

  // The correlation id reached every slice the reserve touched, in their own log lines.
  await sleep(200);
  for (const slice of ['orchestrator', 'event', 'order']) {
    t.true(
      split.server
        .output()
        .split('\n')
        .some((l) => l.startsWith(`${slice} `) && l.includes(`"correlation_id":"${correlation}"`)),
      `${slice} logged the correlation id`,
    );
  }

  // A transfer: /api/transfer/… to the orchestrator, /api/transfers/… to the order slice.
  const initiated = await request(edge, 'POST', '/api/transfer/initiate', {
    token: seller.token,
    body: { seat_id: seat, seller_user_id: seller.userId, buyer_user_id: buyer.userId, credits_amount: 40 },
  });
  t.is(initiated.status, 201, JSON.stringify(initiated.body));
  const id = initiated.body.data.transfer_id;
  const confirmed = await request(edge, 'POST', '/api/transfer/confirm', {
    token: buyer.token,
    body: { transfer_id: id, seller_otp: await codeOf(split, seller, id), buyer_otp: await codeOf(split, buyer, id) },
  });
  t.is(confirmed.status, 200, JSON.stringify(confirmed.body));
  t.like((await request(edge, 'GET', `/api/transfers/${id}`, { token: buyer.token })).body.data, {
    status: 'COMPLETED',
  });

  // Swagger UI and the document of every module, at the one base URL.
  const docs = await fetch(`${edge}/docs`);
  t.is(docs.status, 200);
  t.regex(await docs.text(), /swagger/i);
  const served = await request(edge, 'GET', '/openapi.json');
  t.deepEqual(served.body, JSON.parse(readFileSync(join(dir, 'openapi.json'), 'utf8')));
  for (const path of ['/api/auth/login', '/api/orders/{order_id}', '/api/events/{event_id}', '/api/transfer/confirm']) {
    t.truthy(served.body.paths[path], `${path} is in the merged document`);
  }

  // The edge keeps the slices' own routes to itself.
  for (const path of ['/internal/user/getUser', '/metrics', '/health']) {
    const res = await request(edge, 'POST', path, { body: {} });
    t.is(res.status, 404, path);
    t.is(res.body.error_code, 'NOT_FOUND', path);
  }

  // With the slices gone, every prefix answers 503 in the envelope.
  split.server.child.kill('SIGTERM');
  await split.server.exited;
  for (const path of ['/api/events', '/api/orders', '/api/tickets', '/api/users/me']) {
    const res = await request(edge, 'GET', path);
    t.is(res.status, 503, path);
    t.is(res.body.error_code, 'SERVICE_UNAVAILABLE', path);
  }
}

for (const kind of DATABASES) {
  const title = `[${kind}] deploy/nginx.conf in front of the four slices: one base URL for every route, Swagger UI and the merged document`;
  if (NGINX) test(title, (t) => throughTheEdge(t, kind));
  // .ci/run installs it; a bare Node.js machine may lack it.
  else test.skip(`${title} — skipped: nginx is missing (apt-get install nginx-light)`, () => {});
}
