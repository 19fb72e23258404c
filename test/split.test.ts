import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { freshDatabase, PG_URL, request } from './helpers/app.js';
import { freePort, type Server, spawnServer, waitForHealth } from './helpers/process.js';

const SECRETS = {
  JWT_SECRET: 'split-test-jwt-secret-0123456789',
  SERVICE_TOKEN: 'split-test-service-token-0123456789',
};

test('the user and event slices run as two processes: a token from one works on the other, and each names the other in /health', async (t) => {
  const [userPort, eventPort] = [await freePort(), await freePort()];
  const urls = { USER_URL: `http://127.0.0.1:${userPort}`, EVENT_URL: `http://127.0.0.1:${eventPort}` };
  const env = { ...SECRETS, ...urls, USER_PORT: String(userPort), EVENT_PORT: String(eventPort) };
  const servers: Server[] = [];
  t.teardown(() => {
    for (const s of servers) s.cleanup();
  });

  servers.push(spawnServer({ ...env, MODULES: 'event' }));
  // The event slice checks sessions through the user slice: without it, it is up but unhealthy.
  let unhealthy = await request(urls.EVENT_URL, 'GET', '/health').catch(() => undefined);
  for (let i = 0; !unhealthy && i < 300; i++) {
    await sleep(100);
    unhealthy = await request(urls.EVENT_URL, 'GET', '/health').catch(() => undefined);
  }
  if (!unhealthy) return t.fail(`the event slice did not answer: ${servers[0].output()}`);
  t.is(unhealthy.status, 503);
  t.is(unhealthy.body.checks.user, 'unreachable');

  servers.push(
    spawnServer({ ...env, MODULES: 'user', ADMIN_EMAIL: 'split@test.local', ADMIN_PASSWORD: 'split-admin-pw' }),
  );
  const userHealth = await waitForHealth(servers[1], urls.USER_URL);
  t.deepEqual(userHealth.modules, ['user']);
  const eventHealth = await waitForHealth(servers[0], urls.EVENT_URL);
  t.deepEqual(eventHealth.modules, ['event']);
  t.is(eventHealth.checks.user, 'reachable');

  const login = await request(urls.USER_URL, 'POST', '/api/auth/login', {
    body: { email: 'split@test.local', password: 'split-admin-pw' },
  });
  t.is(login.status, 200);
  const token = login.body.data.access_token;
  const venue = await request(urls.EVENT_URL, 'POST', '/api/admin/venues', {
    token,
    body: { name: 'Split Hall', address: '1 Two Street', total_halls: 1 },
  });
  t.is(venue.status, 201);
  t.is((await request(urls.EVENT_URL, 'GET', '/api/auth/login')).status, 404, 'each route only on its owner');

  // The event slice keeps a view of sessions, refreshed every quarter second: a logout reaches it
  // within a second, with no call to the user slice per request.
  await request(urls.USER_URL, 'POST', '/api/auth/logout', { token, body: {} });
  const loggedOut = Date.now();
  let after = 0;
  while (Date.now() - loggedOut < 1500) {
    after = (
      await request(urls.EVENT_URL, 'POST', '/api/admin/venues', {
        token,
        body: { name: 'Late Hall', address: '2 Two Street', total_halls: 1 },
      })
    ).status;
    if (after === 401) break;
    await sleep(20);
  }
  t.is(after, 401, 'a logout on the user slice ends the session on the event slice');
  t.true(Date.now() - loggedOut < 1000, `within a second: ${Date.now() - loggedOut} ms`);
});

// Two instances of a slice may be started together on a fresh database (a deployment's first
// start): one migrates, the other waits for it and finds nothing left to run.
const pgTest = PG_URL ? test : test.skip;
pgTest('four instances of the event slice start together on a fresh PostgreSQL database', async (t) => {
  const db = await freshDatabase('postgres');
  t.teardown(() => db.drop());
  const ports = await Promise.all([1, 2, 3, 4].map(() => freePort()));
  const servers = ports.map((port) =>
    spawnServer({ ...SECRETS, MODULES: 'event', EVENT_PORT: String(port), DATABASE_URL: db.env.DATABASE_URL }),
  );
  t.teardown(() => {
    for (const s of servers) s.cleanup();
  });
  // No user slice: /health says 503 for it, but both processes are up and answer.
  const up = (status: number, body: any) => status === 503 && body?.checks?.database === 'connected';
  const bodies = await Promise.all(servers.map((s, i) => waitForHealth(s, `http://127.0.0.1:${ports[i]}`, 60_000, up)));
  for (const body of bodies) t.deepEqual((body as { modules: string[] }).modules, ['event']);
  const events = await Promise.all(ports.map((p) => request(`http://127.0.0.1:${p}`, 'GET', '/api/events')));
  t.deepEqual(
    events.map((r) => r.status),
    ports.map(() => 200),
  );
});
