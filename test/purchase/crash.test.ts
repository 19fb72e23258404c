import test, { type ExecutionContext } from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { DATABASES, type DbKind, freshDatabase, type Response, startApp, type TestApp } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import {
  bootServer,
  checkInvariants,
  isAllowed,
  kernelReader,
  payOutcome,
  pgReader,
  pool,
  type Reader,
  remoteApp,
  reserveOutcome,
  restartApp,
  type SagaRow,
  type Spawned,
  settledSagas,
  snapshot,
  sqliteReader,
  stopServer,
} from '../helpers/crash.js';
import { createEvent, seatIds } from '../helpers/events.js';
import { adminLogin, grant, newUser, type TestUser } from '../helpers/users.js';

/**
 * PRODUCT.md invariant 6: a crash at any step of a reserve or a pay leaves, after a restart, a
 * state that keeps invariants 1–3 without manual repair, and the purchase at one of its two
 * allowed ends. Each case runs on a fresh database: a process with one fault point armed runs the
 * flow to it and dies there (SIGKILL: `exit`), or answers 5xx and lives on (`error`, in process);
 * a second process without faults starts on the same data and its saga recovery finishes the
 * work. The databases are then read directly, not through the API.
 */

interface Scenario {
  point: string;
  flow: 'reserve' | 'pay';
  /** Faults that lead the flow to a compensation point, armed beside it. */
  arrange?: string;
  /** The seats were sold and paid before the point: recovery must go forward to CONFIRMED. */
  forward?: boolean;
}

const SCENARIOS: Scenario[] = [
  { point: 'reserve.hold', flow: 'reserve' },
  { point: 'reserve.order', flow: 'reserve' },
  { point: 'reserve.done', flow: 'reserve' },
  // The order cannot be created: the saga gives the held seats back.
  { point: 'reserve.release', flow: 'reserve', arrange: 'order.createOrder=error' },
  { point: 'pay.debit', flow: 'pay' },
  { point: 'pay.seats', flow: 'pay' },
  { point: 'pay.order', flow: 'pay', forward: true },
  { point: 'pay.done', flow: 'pay', forward: true },
  // The seats cannot be sold after the debit: the saga refunds, then ends the order.
  { point: 'pay.refund', flow: 'pay', arrange: 'event.confirmOrder=error' },
  { point: 'pay.end', flow: 'pay', arrange: 'event.confirmOrder=error' },
];

const faults = (s: Scenario, action: 'error' | 'exit') => [s.arrange, `${s.point}=${action}`].filter(Boolean).join(',');

const GRANTED = 1000;
const GRANTED_CENTS = GRANTED * 100;
/** A dead process's saga lease is INTERNAL_TIMEOUT_MS + 1 s: short, so that recovery may take it soon. */
const PROCESS_ENV = {
  JWT_SECRET: 'crash-test-jwt-secret-0123456789',
  SERVICE_TOKEN: 'crash-test-service-token-0123456789',
  INTERNAL_TIMEOUT_MS: '1000',
  SWEEP_INTERVAL_MS: '200',
  // The dead process also held the recovery job's own lease; it must run out as soon.
  JOB_LEASE_MS: '1000',
};

/** A customer with credits and two seats of a fresh event (CAT1, 149.50 each). */
async function setUp(app: TestApp) {
  const admin = await adminLogin(app);
  const user = await newUser(app);
  await grant(app, admin, user.userId, GRANTED);
  const event = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 3, category: 'CAT1' }] });
  return { user, seats: seatIds(event).slice(0, 2) };
}

const reserve = (app: TestApp, user: TestUser, seats: string[]) =>
  app.request('POST', '/api/reserve', { token: user.token, body: { seat_ids: seats } });
const pay = (app: TestApp, user: TestUser, orderId: string) =>
  app.request('POST', '/api/pay', { token: user.token, body: { order_id: orderId } });

/** Runs the scenario's flow up to its last request, whose answer (or failure) is returned. */
async function runFlow(t: ExecutionContext, app: TestApp, s: Scenario, user: TestUser, seats: string[]) {
  if (s.flow === 'reserve') return { orderId: undefined, last: await reserve(app, user, seats).catch(asError) };
  const held = await reserve(app, user, seats);
  t.is(held.status, 200, JSON.stringify(held.body));
  const orderId: string = held.body.data.order_id;
  return { orderId, last: await pay(app, user, orderId).catch(asError) };
}

const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));
const shown = (r: Response | Error) =>
  r instanceof Error ? `${r.message} (${String(r.cause)})` : `${r.status} ${JSON.stringify(r.body)}`;
const running = (sagas: SagaRow[]) => sagas.filter((s) => s.status === 'RUNNING');
const logSagas = (t: ExecutionContext, sagas: SagaRow[]) =>
  t.log(`sagas: ${sagas.map((s) => `${s.kind} ${s.step} ${s.status}`).join('; ')}`);

/** After recovery: no saga RUNNING, every invariant, and the purchase at an allowed end. */
async function recovered(
  t: ExecutionContext,
  reader: Reader,
  s: Scenario,
  purchase: { user: TestUser; seats: string[]; orderId?: string },
  settle: () => Promise<SagaRow[]>,
  now?: () => number,
) {
  const sagas = await settle();
  logSagas(t, sagas);
  t.deepEqual(running(sagas), [], 'no saga is RUNNING once recovery has had its time');
  const snap = await snapshot(reader, now?.());
  checkInvariants(t, snap, { granted: GRANTED_CENTS });
  const { userId } = purchase.user;
  isAllowed(
    t,
    s.flow === 'reserve'
      ? reserveOutcome(snap, userId, purchase.seats)
      : payOutcome(snap, {
          orderId: purchase.orderId!,
          userId,
          seatIds: purchase.seats,
          granted: GRANTED_CENTS,
          forward: s.forward,
        }),
  );
}

// Spawned processes: two at a time, whatever the number of cases (each boots a server twice).
const spawned = pool(2);

async function crashCase(t: ExecutionContext, kind: DbKind, s: Scenario) {
  const db = kind === 'postgres' ? await freshDatabase('postgres') : undefined;
  const dbEnv: Record<string, string> = db ? { DATABASE_URL: db.env.DATABASE_URL } : {};
  const servers: Spawned[] = [];
  let reader: Reader | undefined;
  t.teardown(async () => {
    await reader?.close();
    for (const server of servers.reverse()) server.server.cleanup();
    await db?.drop();
  });

  const first = await bootServer({ ...PROCESS_ENV, ...dbEnv, FAULT_INJECTION: faults(s, 'exit') });
  servers.push(first);
  const app = remoteApp(first.url);
  const { user, seats } = await setUp(app);
  const { orderId, last } = await runFlow(t, app, s, user, seats);
  if (!(last instanceof Error)) return t.fail(`the ${s.flow} answered ${shown(last)}: ${s.point} was not reached`);
  t.is(await first.server.exited, 'SIGKILL', `the process died at ${s.point}: ${shown(last)}`);

  const second = await bootServer({ ...PROCESS_ENV, ...dbEnv }, first.server.dataDir);
  servers.push(second);
  reader = db ? await pgReader(db.env.DATABASE_URL) : sqliteReader(first.server.dataDir);
  const r = reader;
  await recovered(t, r, s, { user, seats, orderId }, async () => {
    const sagas = await settledSagas(r, { timeoutMs: 15_000 });
    // Nothing moves while the tables are read one by one.
    await stopServer(second.server);
    return sagas;
  });
}

for (const kind of DATABASES) {
  for (const s of SCENARIOS) {
    test(`[${kind}] a crash (SIGKILL) at ${s.point}: after a restart no saga runs, the invariants hold and the ${s.flow} is at an allowed end`, (t) =>
      spawned(() => crashCase(t, kind, s)));
  }
}

// In process: a fault point that throws, then a restart on the same database whose clock is past
// the saga's lease, and recovery ticks run by the test.
const inProcess = pool(2);
const PAST_LEASES_MS = 30_000;

async function faultThenRestart(
  t: ExecutionContext,
  kind: DbKind,
  s: Scenario,
  env: Record<string, string>,
  check: (last: Response | Error) => void,
) {
  // Sweepers and recovery tick only when the test says so, so that nothing moves behind its back.
  const quiet = { SWEEP_INTERVAL_MS: '3600000' };
  const app = await startApp(kind, { ...quiet, ...env });
  let restarted: TestApp | undefined;
  t.teardown(async () => {
    await restarted?.close();
    await app.close();
  });
  const { user, seats } = await setUp(app);
  const { orderId, last } = await runFlow(t, app, s, user, seats);
  check(last);
  await app.running.close();

  const clock = manualClock();
  clock.advance(PAST_LEASES_MS);
  const again = await restartApp(app, { ...quiet, FAULT_INJECTION: '' }, clock);
  restarted = again;
  const recovery = () => again.kernel.jobs.run('orchestrator', 'saga-recovery');
  const reader = kernelReader(again.kernel);
  await recovered(
    t,
    reader,
    s,
    { user, seats, orderId },
    () => settledSagas(reader, { timeoutMs: 10_000, poke: recovery }),
    () => clock.now(),
  );
}

/** The failed request answered a server error in the envelope, neither success nor a refusal. */
function serverError(t: ExecutionContext, s: Scenario) {
  return (last: Response | Error) => {
    if (last instanceof Error) return t.fail(`the ${s.flow} got no answer: ${shown(last)}`);
    t.true(last.status >= 500 && last.status < 600, `the ${s.flow} at ${s.point}=error answered ${shown(last)}`);
    t.is(last.body?.success, false, shown(last));
  };
}

for (const kind of DATABASES) {
  for (const s of SCENARIOS) {
    test(`[${kind}] in process, a failure (error) at ${s.point} answers 5xx; after a restart recovery leaves the invariants and an allowed end`, (t) =>
      inProcess(() =>
        faultThenRestart(
          t,
          kind,
          s,
          { FAULT_INJECTION: faults(s, 'error'), INTERNAL_TIMEOUT_MS: '1000' },
          serverError(t, s),
        ),
      ));
  }

  // A call whose answer never comes: the pay gives up at the deadline, and never claims success.
  for (const point of ['event.confirmOrder', 'user.debit']) {
    const s: Scenario = { point, flow: 'pay' };
    test(`[${kind}] in process, a pay whose ${point} hangs answers 503 SERVICE_UNAVAILABLE, not 200; after a restart it completes or refunds`, (t) =>
      inProcess(() =>
        faultThenRestart(t, kind, s, { FAULT_INJECTION: `${point}=hang`, INTERNAL_TIMEOUT_MS: '500' }, (last) => {
          if (last instanceof Error) return t.fail(`the pay got no answer: ${shown(last)}`);
          isError(t, last, 503, 'SERVICE_UNAVAILABLE');
        }),
      ));
  }
}
