import test, { type ExecutionContext } from 'ava';
import { DATABASES, type DbKind, request, TEST_ADMIN } from './helpers/app.js';
import {
  checkInvariants,
  crashEnv,
  isAllowed,
  payOutcome,
  pgReader,
  type Reader,
  remoteApp,
  settledSagas,
  snapshot,
  sqliteReader,
} from './helpers/crash.js';
import { createEvent, seatIds } from './helpers/events.js';
import { type Server, spawnServer, waitForHealth } from './helpers/process.js';
import { SLICES, type Slice, splitEnv } from './helpers/split.js';
import { grant, login, newUser, type TestUser } from './helpers/users.js';

/**
 * Faults between slices, with each slice its own process: the user slice dies while pays are in
 * flight on the orchestrator slice (its debits hang, so every pay is at its debit). Every pay
 * answers 503, never 500 and never a success; once the user slice is back (without the fault),
 * recovery completes or compensates every pay, and the invariants hold in the databases.
 */

const BUYERS = 12;
const GRANTED = 500;

async function slices(t: ExecutionContext, kind: DbKind) {
  const { url, env, databaseUrl } = await splitEnv(t, kind, {
    ...crashEnv(200),
    ADMIN_EMAIL: TEST_ADMIN.email,
    ADMIN_PASSWORD: TEST_ADMIN.password,
  });
  // The first slice makes the data directory (SQLite); the others share it.
  // The user slice's debits never answer: every pay is in flight, at its debit, when the slice dies.
  const first = spawnServer({ ...env, MODULES: 'user', FAULT_INJECTION: 'user.debit=hang' });
  const dataDir = first.dataDir;
  const running = new Map<Slice, Server>([['user', first]]);
  for (const m of SLICES) if (m !== 'user') running.set(m, spawnServer({ ...env, MODULES: m }, { dataDir }));
  const all: Server[] = [...running.values()];
  // The first one last: its cleanup removes the data directory.
  t.teardown(() => {
    for (const server of [...all].reverse()) server.cleanup();
  });
  for (const m of SLICES) await waitForHealth(running.get(m) as Server, url(m), 60_000);
  const reader: Reader = databaseUrl ? await pgReader(databaseUrl) : sqliteReader(dataDir);
  t.teardown(() => reader.close());
  return {
    url,
    reader,
    running,
    /** Starts a slice again on the same data, once its last process has gone. */
    restart(m: Slice) {
      const server = spawnServer({ ...env, MODULES: m }, { dataDir });
      running.set(m, server);
      all.push(server);
      return waitForHealth(server, url(m), 60_000);
    },
  };
}

async function userSliceDiesDuringPays(t: ExecutionContext, kind: DbKind) {
  const s = await slices(t, kind);
  const users = remoteApp(s.url('user'));
  const admin = await login(users, TEST_ADMIN.email, TEST_ADMIN.password);
  const event = await createEvent(remoteApp(s.url('event')), admin, {
    rows: [{ row_number: 'A', seats: BUYERS, category: 'CAT2' }],
  });
  const seats = seatIds(event);
  const buyers: { user: TestUser; orderId: string; seatId: string }[] = [];
  for (let i = 0; i < BUYERS; i++) {
    const user = await newUser(users);
    await grant(users, admin, user.userId, GRANTED);
    const held = await request(s.url('orchestrator'), 'POST', '/api/reserve', {
      token: user.token,
      body: { seat_id: seats[i] },
    });
    t.is(held.status, 200, JSON.stringify(held.body));
    buyers.push({ user, orderId: held.body.data.order_id, seatId: seats[i] });
  }

  // The pays go out together; the user slice is killed while they are in flight.
  const pays = buyers.map((b) =>
    request(s.url('orchestrator'), 'POST', '/api/pay', { token: b.user.token, body: { order_id: b.orderId } }),
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  s.running.get('user')?.child.kill('SIGKILL');
  const answers = await Promise.all(pays);
  const statuses = answers.map((a) => a.status);
  t.log(`pay answers with the user slice gone: ${JSON.stringify(statuses)}`);
  t.deepEqual(
    statuses.filter((x) => x !== 503),
    [],
    'every pay is 503',
  );
  for (const a of answers.filter((x) => x.status === 503)) t.is(a.body.error_code, 'SERVICE_UNAVAILABLE');

  // Back: recovery finishes every pay left unfinished, forward or back.
  await s.running.get('user')?.exited;
  await s.restart('user');
  const sagas = await settledSagas(s.reader, { timeoutMs: 30_000 });
  t.deepEqual(
    sagas.filter((x) => x.status === 'RUNNING').map((x) => `${x.kind} ${x.step}`),
    [],
    'no saga is left running',
  );
  const snap = await snapshot(s.reader);
  checkInvariants(t, snap, { granted: BUYERS * GRANTED * 100 });
  buyers.forEach((b, i) => {
    // A pay refused before its saga began (the risk flag is the user slice's too) changed nothing.
    if (!snap.sagas.some((x) => x.kind === 'pay' && x.order_id === b.orderId)) {
      const charged = snap.ledger.filter((l) => l.user_id === b.user.userId && l.type === 'PURCHASE');
      const order = snap.orders.find((o) => o.id === b.orderId);
      const seat = snap.seats.find((x) => x.id === b.seatId);
      t.is(answers[i].status, 503);
      t.deepEqual(charged, [], 'a pay that never started charged nothing');
      t.is(order?.status, 'PENDING');
      t.not(seat?.status, 'SOLD');
      return;
    }
    const outcome = payOutcome(snap, {
      orderId: b.orderId,
      userId: b.user.userId,
      seatIds: [b.seatId],
      granted: GRANTED * 100,
      forward: answers[i].status === 200,
    });
    isAllowed(t, outcome);
  });
}

for (const kind of DATABASES) {
  test(`[${kind}] the user slice dies while pays are in flight: each answers 503, and after its restart every pay is completed or undone`, (t) =>
    userSliceDiesDuringPays(t, kind));
}
