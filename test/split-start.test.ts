import { createRequire } from 'node:module';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import { DATABASES, type DbKind, request } from './helpers/app.js';
import { remoteApp } from './helpers/crash.js';
import { createEvent } from './helpers/events.js';
import { freePort, spawnServer } from './helpers/process.js';
import { SLICES, SPLIT_ADMIN, startSplit } from './helpers/split.js';
import { grant, login, newUser } from './helpers/users.js';

/**
 * `npm run start:split`: the four slices from one command, each module in its own process on
 * its own port, their lines prefixed by module; a purchase crosses all four; each slice opens
 * only its own module's database; SIGTERM stops them all.
 */

const MODULES = SLICES;
const ADMIN = SPLIT_ADMIN;

/** The tables of each module's database (SQLite file, or PostgreSQL schema), by module. */
async function tablesOf(kind: DbKind, dataDir: string, url: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  if (kind === 'sqlite') {
    const open = createRequire(import.meta.url)('better-sqlite3');
    for (const m of MODULES) {
      const db = new open(join(dataDir, `${m}.sqlite`), { readonly: true, fileMustExist: true });
      out[m] = db
        .prepare("select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name")
        .all()
        .map((r: { name: string }) => r.name);
      db.close();
    }
    return out;
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  for (const m of MODULES) {
    const { rows } = await client.query(
      'select table_name from information_schema.tables where table_schema = $1 order by table_name',
      [m],
    );
    out[m] = rows.map((r) => r.table_name as string);
  }
  await client.end();
  return out;
}

async function splitRun(t: ExecutionContext, kind: DbKind) {
  const { server: split, url, databaseUrl } = await startSplit(t, kind);
  for (const m of MODULES) {
    const health = (await request(url(m), 'GET', '/health')).body as {
      modules: string[];
      checks: Record<string, string>;
    };
    t.deepEqual(health.modules, [m], `${m} runs alone in its process`);
    for (const [check, state] of Object.entries(health.checks)) {
      t.true(state === 'connected' || state === 'reachable', `${m}: ${check} is ${state}`);
    }
  }

  // A purchase through the slices, each request to the slice that owns its route.
  const users = remoteApp(url('user'));
  const admin = await login(users, ADMIN.email, ADMIN.password);
  const fan = await newUser(users);
  await grant(users, admin, fan.userId, 500);
  const event = await createEvent(remoteApp(url('event')), admin);
  const seat = event.seats[0].seat_id;
  const held = await request(url('orchestrator'), 'POST', '/api/reserve', {
    token: fan.token,
    body: { seat_id: seat },
  });
  t.is(held.status, 200, JSON.stringify(held.body));
  const paid = await request(url('orchestrator'), 'POST', '/api/pay', {
    token: fan.token,
    body: { order_id: held.body.data.order_id },
  });
  t.is(paid.status, 200, JSON.stringify(paid.body));
  const order = await request(url('order'), 'GET', `/api/orders/${held.body.data.order_id}`, { token: fan.token });
  t.like(order.body.data, { status: 'CONFIRMED', seat_ids: [seat] });
  const tickets = await request(url('orchestrator'), 'GET', '/api/tickets', { token: fan.token });
  t.deepEqual(
    tickets.body.data.map((x: { seat_id: string }) => x.seat_id),
    [seat],
  );
  const balance = await request(url('user'), 'GET', '/api/credits/balance', { token: fan.token });
  t.is(balance.body.data.credit_balance, 500 - 149.5);

  // Sessions without a round trip: reserves call the event and order slices, and the user slice
  // not at all (the view asks it for changes a few times a second, whatever the traffic).
  const internalCalls = async () => {
    const counts: Record<string, number> = {};
    for (const m of MODULES) {
      const text = await (await fetch(`${url(m)}/metrics`)).text();
      for (const line of text.split('\n')) {
        const route = /^http_requests_total\{[^}]*route="(\/internal\/[^"]+)"[^}]*\} (\d+)/.exec(line);
        if (route) counts[route[1]] = (counts[route[1]] ?? 0) + Number(route[2]);
      }
    }
    return counts;
  };
  // Eight reserves (a user holds at most ten seats) of seats nobody holds.
  const RESERVES = 8;
  const before = await internalCalls();
  for (let i = 1; i <= RESERVES; i++) {
    const r = await request(url('orchestrator'), 'POST', '/api/reserve', {
      token: fan.token,
      body: { seat_id: event.seats[i].seat_id },
    });
    t.is(r.status, 200, JSON.stringify(r.body));
  }
  const after = await internalCalls();
  const perReserve = Object.fromEntries(
    Object.entries(after)
      .map(([route, n]) => [route, (n - (before[route] ?? 0)) / RESERVES] as const)
      .filter(([route, n]) => n > 0 && route !== '/internal/user/sessionChanges'),
  );
  t.log(`internal calls per reserve: ${JSON.stringify(perReserve)}`);
  t.deepEqual(
    perReserve,
    { '/internal/event/holdSeats': 1, '/internal/order/createOrder': 1 },
    'no session call per request',
  );

  // A logout on the user slice reaches the orchestrator slice within a second.
  const leaving = await login(users, fan.email, fan.password);
  t.is((await request(url('orchestrator'), 'GET', '/api/tickets', { token: leaving.token })).status, 200);
  await request(url('user'), 'POST', '/api/auth/logout', { token: leaving.token, body: {} });
  const loggedOut = performance.now();
  let status = 200;
  while (status !== 401 && performance.now() - loggedOut < 3000) {
    status = (await request(url('orchestrator'), 'GET', '/api/tickets', { token: leaving.token })).status;
  }
  const tookMs = Math.round(performance.now() - loggedOut);
  t.log(`logout to 401 on the orchestrator slice: ${tookMs} ms`);
  t.is(status, 401);
  t.true(tookMs < 1000, `${tookMs} ms`);

  // A role change reaches the other slices the same way: a customer's token made staff by an
  // admin on the user slice may scan at the door on the orchestrator slice within a second.
  const gate = await login(users, fan.email, fan.password);
  const scan = () =>
    request(url('orchestrator'), 'POST', '/api/verify', {
      token: gate.token,
      body: { qr_payload: 'bm90IGEgdGlja2V0', hall_id: 'HALL-A' },
    });
  t.is((await scan()).status, 403, 'a customer may not scan');
  await request(url('user'), 'PATCH', `/api/admin/users/${fan.userId}`, {
    token: admin.token,
    body: { role: 'staff' },
  });
  const promoted = performance.now();
  let scanned = 403;
  while (scanned === 403 && performance.now() - promoted < 3000) scanned = (await scan()).status;
  t.is(scanned, 400, 'now staff: the junk payload is QR_INVALID, not FORBIDDEN');
  t.true(performance.now() - promoted < 1000);

  // Every line is its slice's: each module's requests show up under its own prefix.
  const lines = split.output().split('\n').filter(Boolean);
  for (const m of MODULES) {
    t.true(
      lines.some((l) => l.startsWith(`${m.padEnd(12)} | `) && l.includes('"msg":"request"')),
      `${m} has prefixed request lines`,
    );
  }
  t.deepEqual(
    lines.filter((l) => !/^(user|order|event|orchestrator) +\| /.test(l)),
    [],
    'no line without its prefix',
  );

  // Each slice has opened only its own module's database: its tables and the kernel's.
  const tables = await tablesOf(kind, split.dataDir, databaseUrl ?? '');
  const kernel = ['idempotency_keys', 'job_leases', 'outbox', 'rate_limits'];
  const own = (m: string) => tables[m].filter((x) => !kernel.includes(x) && !x.startsWith('mikro_orm'));
  t.true(own('user').includes('credit_transactions') && !own('user').includes('seats'), `user: ${own('user')}`);
  t.true(own('event').includes('seats') && !own('event').includes('credit_transactions'), `event: ${own('event')}`);
  t.true(own('order').includes('orders') && !own('order').some((x) => ['seats', 'users'].includes(x)));
  t.deepEqual(own('orchestrator'), ['purchase_approvals', 'sagas', 'transfer_approvals']);

  // One signal stops the four: each drains and exits, and so does the command.
  split.child.kill('SIGTERM');
  t.is(await split.exited, 0, split.output().slice(-2000));
  for (const m of MODULES) {
    t.is(await fetch(`${url(m)}/health`).catch(() => 'down'), 'down', `${m} is stopped`);
    t.true(split.output().includes(`${m.padEnd(12)} | `) && split.output().includes('"msg":"stopped"'));
  }
}

for (const kind of DATABASES) {
  test(`[${kind}] npm run start:split runs the four slices, a purchase crosses them, each opens only its own database, and SIGTERM stops them all`, (t) =>
    splitRun(t, kind));
}

test('when one slice ends on its own, start:split stops the others and exits non-zero', async (t) => {
  const ports = Object.fromEntries(await Promise.all(MODULES.map(async (m) => [m, await freePort()] as const)));
  const env: Record<string, string> = { LOG_LEVEL: 'info' };
  for (const m of MODULES) env[`${m.toUpperCase()}_PORT`] = String(ports[m]);
  // The order slice cannot listen: its port is taken.
  const blocker = (await import('node:net')).createServer().listen(ports.order, '127.0.0.1');
  t.teardown(() => blocker.close());
  const split = spawnServer(env, { script: 'scripts/split.ts', group: true });
  t.teardown(() => split.cleanup());
  t.is(await split.exited, 1, split.output().slice(-2000));
  t.regex(split.output(), /order +\| exited with 1; stopping the other slices/);
  for (const m of ['user', 'event', 'orchestrator']) {
    t.is(await fetch(`http://127.0.0.1:${ports[m]}/health`).catch(() => 'down'), 'down', `${m} is stopped`);
  }
});
