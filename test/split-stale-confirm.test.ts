import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import { PG_URL, type Response, request, TEST_ADMIN } from './helpers/app.js';
import {
  checkInvariants,
  isAllowed,
  payOutcome,
  pgReader,
  type Reader,
  remoteApp,
  type Snapshot,
  settledSagas,
  snapshot,
} from './helpers/crash.js';
import { createEvent } from './helpers/events.js';
import { freePort, type Server, spawnServer, waitForHealth } from './helpers/process.js';
import { held, pay } from './helpers/purchase.js';
import { splitEnv } from './helpers/split.js';
import { grant, login, newUser } from './helpers/users.js';

/**
 * A regression test of a free seat: with two event instances and two orchestrator instances on
 * one PostgreSQL database (real processes), a pay's seat confirm sent to event-1 reads the clock
 * while the hold is live, then waits for a pool connection (the test holds a row lock that ten
 * other requests wait on, which fills event-1's pool of ten). The pay gives up on event-1 (three
 * timeouts), and saga recovery on orchestrator-2 (which calls event-2) asks again: event-2 answers
 * HOLD_EXPIRED. Only then is event-1 let go, and its late confirm, with the clock it read before
 * the expiry, lands.
 *
 * Before the fix the saga refunded the buyer and ended the order EXPIRED while the late confirm
 * sold the seat: refunded and owner. Now the refund step first abandons the order (releases its
 * holds, so that no late confirm can sell them) and goes forward when a confirm already sold them:
 *
 * - the late confirm lands after the whole compensation: it is refused (the hold was released),
 *   and the order ends EXPIRED, refunded, its seat not sold;
 * - it lands after HOLD_EXPIRED but before the refund step (orchestrator-2 is killed right after it
 *   recorded that step; orchestrator-1's recovery runs it): it sells the seat, and the order ends
 *   CONFIRMED, paid once, never refunded.
 *
 * The event instances do not sweep holds (an expired hold stays in its row, the race's window);
 * everything else sweeps every 250 ms.
 */

const pgTest = PG_URL ? test.serial : test.skip;
const unless = PG_URL ? '' : ' — skipped: no DATABASE_URL or TEST_DATABASE_URL';

const SERVICE_TOKEN = 'split-stale-service-token-0123456789';
const ENV = {
  JWT_SECRET: 'split-stale-jwt-secret-0123456789abcdef',
  SERVICE_TOKEN,
  ADMIN_EMAIL: TEST_ADMIN.email,
  ADMIN_PASSWORD: TEST_ADMIN.password,
  HOLD_TTL_SECONDS: '3',
  // A runner's saga lease is 3 × this + 2 s: recovery takes a stalled pay 5 s after its last step.
  INTERNAL_TIMEOUT_MS: '1000',
  JOB_LEASE_MS: '1500',
  SWEEP_INTERVAL_MS: '250',
};
/** The event instances leave expired holds in their rows. */
const NO_HOLD_SWEEP = { SWEEP_INTERVAL_MS: '600000' };
/** event-1's pool (persistence.ts): this many requests waiting on a lock leave it no connection. */
const POOL = 10;
const GRANTED = 500;
const GRANTED_CENTS = GRANTED * 100;
/** One CAT2 seat. */
const PRICE = 8000;

interface Urls {
  user: string;
  order: string;
  e1: string;
  e2: string;
  o1: string;
  o2: string;
}

interface Deployment {
  url: Urls;
  /** orchestrator-2: it holds the saga-recovery lease and calls event-2. */
  o2: Server;
  reader: Reader;
  /** The test's own connection, which holds the row lock. */
  locker: pg.Client;
}

/**
 * user, order and event-1 on a fresh database, then event-2, then orchestrator-2 (first, so that
 * it takes the saga-recovery lease and keeps it), then orchestrator-1; each orchestrator calls its
 * own event instance. `o2` is added to orchestrator-2's environment.
 */
async function deploy(t: ExecutionContext, o2: Record<string, string> = {}): Promise<Deployment> {
  const { url, env, databaseUrl } = await splitEnv(t, 'postgres', ENV);
  const [e2Port, o2Port] = [await freePort(), await freePort()];
  const urls: Urls = {
    user: url('user'),
    order: url('order'),
    e1: url('event'),
    e2: `http://127.0.0.1:${e2Port}`,
    o1: url('orchestrator'),
    o2: `http://127.0.0.1:${o2Port}`,
  };
  const start = async (extra: Record<string, string>, base: string) => {
    const server = spawnServer({ ...env, ...extra });
    t.teardown(() => server.cleanup());
    await waitForHealth(server, base, 90_000);
    return server;
  };
  await Promise.all([
    start({ MODULES: 'user' }, urls.user),
    start({ MODULES: 'order' }, urls.order),
    start({ MODULES: 'event', ...NO_HOLD_SWEEP }, urls.e1),
  ]);
  // The second instance once the first has made the schema.
  await start({ MODULES: 'event', EVENT_PORT: String(e2Port), ...NO_HOLD_SWEEP }, urls.e2);
  const second = await start(
    { MODULES: 'orchestrator', ORCHESTRATOR_PORT: String(o2Port), EVENT_URL: urls.e2, ...o2 },
    urls.o2,
  );
  await start({ MODULES: 'orchestrator' }, urls.o1);

  const reader = await pgReader(databaseUrl as string);
  t.teardown(() => reader.close());
  const locker = new pg.Client({ connectionString: databaseUrl });
  await locker.connect();
  t.teardown(() => locker.end().catch(() => undefined));
  const [lease] = await reader.all<{ holder: string }>(
    'orchestrator',
    (tb) => `select holder from ${tb('job_leases')} where name = 'saga-recovery'`,
  );
  t.true(lease?.holder.startsWith(`${second.child.pid}:`), `orchestrator-2 holds saga recovery: ${lease?.holder}`);
  return { url: urls, o2: second, reader, locker };
}

const internal = (base: string, method: string, body: unknown) =>
  request(base, 'POST', `/internal/event/${method}`, { headers: { 'x-service-token': SERVICE_TOKEN }, body });

/** How event-1 has answered a port method so far, by status, from its /metrics. */
async function answers(base: string, method: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('http_requests_total{') || !line.includes(`route="/internal/event/${method}"`)) continue;
    const status = /status="(\d+)"/.exec(line)?.[1] as string;
    out[status] = (out[status] ?? 0) + Number(line.split(' ').at(-1));
  }
  return out;
}
const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

async function poll<T>(what: string, read: () => Promise<T>, done: (v: T) => boolean, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${ms} ms`);
    await sleep(100);
  }
}

interface PaySaga {
  step: string;
  status: string;
  data: string;
  response: string | null;
}
const paySaga = async (reader: Reader, orderId: string) =>
  (
    await reader.all<PaySaga>(
      'orchestrator',
      (tb) => `select step, status, data, response from ${tb('sagas')} where kind = 'pay' and order_id = ?`,
      [orderId],
    )
  )[0];

/** Sessions of the database waiting on a lock (the reader's own connection is not in a transaction). */
const waitingOnLocks = async (reader: Reader) =>
  Number(
    (
      await reader.all<{ n: string }>(
        'event',
        () =>
          "select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'",
      )
    )[0].n,
  );

const shown = (r: Response) => `${r.status} ${JSON.stringify(r.body)}`;

interface Stalled {
  orderId: string;
  buyer: string;
  seat: string;
  /** The ten reserves that filled event-1's pool; they answer once the lock is let go. */
  busy: Promise<Response>[];
  busyOrders: string[];
}

/**
 * A buyer reserves seat 1 (through orchestrator-1) and pays for it while event-1's pool is full:
 * debited, its three confirm attempts wait in event-1's queue, each with the clock it read while
 * the hold was live, and the pay answers 503. The lock stays held.
 */
async function stalledPay(t: ExecutionContext, d: Deployment): Promise<Stalled> {
  const users = remoteApp(d.url.user);
  const flows = remoteApp(d.url.o1);
  const admin = await login(users, TEST_ADMIN.email, TEST_ADMIN.password);
  const event = await createEvent(remoteApp(d.url.e1), admin, {
    rows: [{ row_number: 'A', seats: 2, category: 'CAT2' }],
  });
  const [s1, s2] = event.seats.map((s) => s.seat_id);
  const buyer = await newUser(users);
  await grant(users, admin, buyer.userId, GRANTED);
  const reserved = await held(flows, buyer, s1);
  const heldUntil = Date.parse(reserved.held_until);

  // Seat 2 locked by the test; ten reserves of it take event-1's ten connections and wait.
  await d.locker.query('begin');
  await d.locker.query('select id from event.seats where id = $1 for update', [s2]);
  const busyOrders = Array.from({ length: POOL }, () => randomUUID());
  const busy = busyOrders.map((orderId) =>
    internal(d.url.e1, 'holdSeats', { seatIds: [s2], userId: randomUUID(), orderId, ttlSeconds: 60, holdLimit: 10 }),
  );
  // A test that fails before it lets them go kills event-1 under them.
  for (const b of busy) b.catch(() => undefined);
  // Read outside the lock's transaction, which would see one snapshot of pg_stat_activity.
  await poll(
    'reserves waiting on the lock',
    () => waitingOnLocks(d.reader),
    (n) => n === POOL,
  );

  const sent = Date.now();
  t.true(heldUntil - sent > 1000, `the pay is sent ${heldUntil - sent} ms before the hold ends`);
  const paid = await pay(flows, buyer, reserved.order_id);
  t.is(paid.status, 503, `the pay gave up on event-1: ${shown(paid)}`);
  t.deepEqual(await answers(d.url.e1, 'confirmOrder'), {}, 'event-1 has answered no confirm yet');
  t.log(`pay answered ${paid.status} ${Date.now() - sent} ms after it was sent`);
  return { orderId: reserved.order_id, buyer: buyer.userId, seat: s1, busy, busyOrders };
}

/** Lets event-1 go: its queued confirms run; waits until it has answered `confirms` of them, and frees seat 2. */
async function letGo(d: Deployment, stalled: Stalled, confirms: number) {
  await d.locker.query('commit');
  await Promise.all(stalled.busy);
  for (const orderId of stalled.busyOrders) await internal(d.url.e1, 'releaseOrder', { orderId });
  return poll(
    "event-1's late confirms",
    () => answers(d.url.e1, 'confirmOrder'),
    (c) => total(c) >= confirms,
  );
}

/** The invariants, and the buyer never both refunded and the seat's owner. */
function invariants(t: ExecutionContext, snap: Snapshot, s: Stalled) {
  checkInvariants(t, snap, { granted: GRANTED_CENTS });
  const refunded = snap.ledger.some(
    (l) => l.user_id === s.buyer && l.type === 'REFUND' && l.reference_id === s.orderId,
  );
  const seat = snap.seats.find((x) => x.id === s.seat);
  t.false(
    refunded && seat?.owner_user_id === s.buyer,
    `the buyer was refunded and owns the seat (${seat?.status} to ${seat?.sold_order_id})`,
  );
  isAllowed(t, payOutcome(snap, { orderId: s.orderId, userId: s.buyer, seatIds: [s.seat], granted: GRANTED_CENTS }));
}

/** The tables once no saga runs. */
async function settled(t: ExecutionContext, d: Deployment): Promise<Snapshot> {
  const sagas = await settledSagas(d.reader, { timeoutMs: 30_000 });
  t.deepEqual(
    sagas.filter((x) => x.status === 'RUNNING').map((x) => `${x.kind} ${x.step}`),
    [],
    'no saga is left RUNNING',
  );
  return snapshot(d.reader);
}

const ledgerOf = (snap: Snapshot, s: Stalled) =>
  snap.ledger
    .filter((l) => l.user_id === s.buyer && l.reference_id === s.orderId)
    .map((l) => `${l.type} ${l.amount}`)
    .sort();

pgTest(
  `[postgres split] a confirm stuck on event-1 lands after event-2 answered HOLD_EXPIRED and the saga refunded: it sells nothing, the order ends EXPIRED and refunded${unless}`,
  async (t) => {
    const d = await deploy(t);
    const s = await stalledPay(t, d);

    // Recovery on orchestrator-2: event-2 says the hold expired; the saga compensates.
    const saga = await poll(
      'the pay saga',
      () => paySaga(d.reader, s.orderId),
      (x) => x?.status !== 'RUNNING',
    );
    t.like(saga, { step: 'end', status: 'COMPENSATED' });
    t.is(JSON.parse(saga.response ?? '{}').code, 'HOLD_EXPIRED', `event-2 refused the confirm: ${saga.response}`);
    t.deepEqual(await answers(d.url.e1, 'confirmOrder'), {}, 'event-1 has still answered no confirm');

    // Now event-1's three confirms run, with the time they read before they waited.
    const late = await letGo(d, s, 3);
    t.log(`event-1 answered its late confirms: ${JSON.stringify(late)}`);

    const snap = await settled(t, d);
    invariants(t, snap, s);
    t.deepEqual(late, { '409': 3 }, 'every late confirm is refused: the hold was released (SEAT_NOT_HELD)');
    t.like(
      snap.orders.find((o) => o.id === s.orderId),
      { status: 'EXPIRED' },
    );
    t.like(
      snap.seats.find((x) => x.id === s.seat),
      { status: 'AVAILABLE', owner_user_id: null, sold_order_id: null },
    );
    t.deepEqual(ledgerOf(snap, s), [`PURCHASE -${PRICE}`, `REFUND ${PRICE}`]);
    t.is(snap.users.find((u) => u.id === s.buyer)?.credit_balance, GRANTED_CENTS);
  },
);

pgTest(
  `[postgres split] a confirm stuck on event-1 lands after event-2 answered HOLD_EXPIRED, before the refund: it sells the seat, and recovery confirms the order, paid once, never refunded${unless}`,
  async (t) => {
    // orchestrator-2 dies right after its recovery has recorded the refund step, before the step runs.
    const d = await deploy(t, { FAULT_INJECTION: 'pay.refund=exit' });
    const s = await stalledPay(t, d);

    const saga = await poll(
      'the pay saga',
      () => paySaga(d.reader, s.orderId),
      (x) => x?.step === 'refund',
    );
    t.is(await d.o2.exited, 'SIGKILL', 'orchestrator-2 was killed at pay.refund');
    t.like(saga, { step: 'refund', status: 'RUNNING' });
    t.is(JSON.parse(saga.data).error?.code, 'HOLD_EXPIRED', `event-2 refused the confirm: ${saga.data}`);

    // event-1's confirms run now: the first sells the expired hold by its stale clock, the others repeat it.
    const late = await letGo(d, s, 3);
    t.log(`event-1 answered its late confirms: ${JSON.stringify(late)}`);
    t.deepEqual(late, { '200': 3 }, 'the late confirm sold the seat (and its repeats answered the sale)');
    const mid = await snapshot(d.reader);
    t.like(
      mid.seats.find((x) => x.id === s.seat),
      { status: 'SOLD', sold_order_id: s.orderId, owner_user_id: s.buyer },
    );

    // orchestrator-1's recovery takes the saga once orchestrator-2's leases have run out, and runs the refund step.
    const snap = await settled(t, d);
    invariants(t, snap, s);
    t.like(await paySaga(d.reader, s.orderId), { step: 'order', status: 'DONE' }, 'forward from the refund step');
    t.like(
      snap.orders.find((o) => o.id === s.orderId),
      { status: 'CONFIRMED' },
    );
    t.like(
      snap.seats.find((x) => x.id === s.seat),
      { status: 'SOLD', owner_user_id: s.buyer, sold_order_id: s.orderId, price_paid: PRICE },
    );
    t.deepEqual(ledgerOf(snap, s), [`PURCHASE -${PRICE}`]);
    t.is(snap.users.find((u) => u.id === s.buyer)?.credit_balance, GRANTED_CENTS - PRICE);
  },
);
