import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { DATABASES, type DbKind, freshDatabase, type Response, startApp, type TestApp } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import {
  bootServer,
  checkInvariants,
  crashEnv,
  isAllowed,
  kernelReader,
  payOutcome,
  pgReader,
  pool,
  type Reader,
  readSagas,
  remoteApp,
  reserveOutcome,
  restartApp,
  type SagaRow,
  type Spawned,
  settledSagas,
  snapshot,
  spawnAt,
  sqliteReader,
  stepOf,
  stopServer,
} from '../helpers/crash.js';
import { createEvent, seatIds } from '../helpers/events.js';
import { adminLogin, grant, newUser, type TestUser } from '../helpers/users.js';

/**
 * The product's invariant 6: a crash at any step of a reserve or a pay leaves, after a restart, a
 * state that keeps invariants 1–3 without manual repair, and the purchase at one of its two
 * allowed ends. Each case runs on a fresh database: a process with one fault point armed runs the
 * flow to it and dies there (SIGKILL: `exit`), or answers 5xx and lives on (`error`, in process);
 * a process without faults then starts on the same data and its saga recovery finishes the work.
 * The databases are read directly, not through the API.
 */

interface Scenario {
  point: string;
  flow: 'reserve' | 'pay';
  /** Faults armed beside the point that lead the flow to it. */
  arrange?: string;
  /**
   * A compensation met only by recovery: the flow first stops at this point, the hold runs out,
   * and the recovery of a process with `point` armed meets it.
   */
  via?: string;
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
  // Pay refunds only when the sale of the seats is refused; a sale whose outcome is unknown (a
  // fault, a deadline) is retried, never compensated. The refusal a test can bring about is a
  // hold that ran out between the debit and the sale.
  { point: 'pay.refund', flow: 'pay', via: 'pay.seats' },
  { point: 'pay.end', flow: 'pay', via: 'pay.seats' },
];

/** FAULT_INJECTION of the process that runs the flow. */
const faultsOf = (s: Scenario, action: 'error' | 'exit') =>
  s.via ? `${s.via}=${action}` : [s.arrange, `${s.point}=${action}`].filter(Boolean).join(',');
const kindOf = (point: string) => point.slice(0, point.indexOf('.'));

const GRANTED = 1000;
const GRANTED_CENTS = GRANTED * 100;
const SWEEP_MS = 200;
const PROCESS_ENV = crashEnv(SWEEP_MS);

/** A customer with credits and two seats of a fresh event (CAT1, 149.50 each). */
async function setUp(app: TestApp) {
  const admin = await adminLogin(app);
  const user = await newUser(app);
  await grant(app, admin, user.userId, GRANTED);
  const event = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 3, category: 'CAT1' }] });
  return { user, seats: seatIds(event).slice(0, 2) };
}

const asError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));
const shown = (r: Response | Error) =>
  r instanceof Error ? `${r.message} (${String(r.cause)})` : `${r.status} ${JSON.stringify(r.body)}`;
const describe = (sagas: SagaRow[]) => sagas.map((s) => `${s.kind} ${s.step} ${s.status}`).join('; ') || 'none';

/** Runs the scenario's flow up to its last request, whose answer (or failure) is returned. */
async function runFlow(t: ExecutionContext, app: TestApp, s: Scenario, user: TestUser, seats: string[]) {
  const reserve = () => app.request('POST', '/api/reserve', { token: user.token, body: { seat_ids: seats } });
  if (s.flow === 'reserve') return { last: await reserve().catch(asError) };
  const held = await reserve();
  t.is(held.status, 200, JSON.stringify(held.body));
  const orderId: string = held.body.data.order_id;
  const heldUntil = Date.parse(held.body.data.held_until);
  const pay = () => app.request('POST', '/api/pay', { token: user.token, body: { order_id: orderId } });
  return { orderId, heldUntil, last: await pay().catch(asError) };
}

/** The fault stopped its saga where the point says: RUNNING at the step the point follows. */
async function leftAt(t: ExecutionContext, reader: Reader, kind: string, step: string) {
  const sagas = await readSagas(reader);
  t.true(
    sagas.some((s) => s.kind === kind && s.step === step && s.status === 'RUNNING'),
    `a ${kind} saga is left RUNNING at step ${step}; sagas: ${describe(sagas)}`,
  );
}

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
  t.log(`sagas: ${describe(sagas)}`);
  t.deepEqual(
    sagas.filter((saga) => saga.status === 'RUNNING'),
    [],
    'no saga is RUNNING once recovery has had its time',
  );
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

// Three cases at a time, whatever their number: a spawned case boots two or three servers and
// mostly waits (for a boot, a lease, a hold to run out); an in-process one boots two or three kernels.
const slot = pool(3);

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

  // With a via, the hold must run out before the next process's recovery sells the seats.
  const hold: Record<string, string> = s.via ? { HOLD_TTL_SECONDS: '2' } : {};
  const first = await bootServer({ ...PROCESS_ENV, ...dbEnv, ...hold, FAULT_INJECTION: faultsOf(s, 'exit') });
  servers.push(first);
  const { dataDir } = first.server;
  const app = remoteApp(first.url);
  const { user, seats } = await setUp(app);
  const { orderId, heldUntil, last } = await runFlow(t, app, s, user, seats);
  const stop = s.via ?? s.point;
  if (!(last instanceof Error)) return t.fail(`the ${s.flow} answered ${shown(last)}: ${stop} was not reached`);
  t.is(await first.server.exited, 'SIGKILL', `the process died at ${stop}: ${shown(last)}`);
  reader = db ? await pgReader(db.env.DATABASE_URL) : sqliteReader(dataDir);
  await leftAt(t, reader, kindOf(stop), stepOf(stop));

  if (s.via) {
    await sleep(Math.max(0, heldUntil! + 500 - Date.now()));
    const dying = await spawnAt({ ...PROCESS_ENV, ...dbEnv, FAULT_INJECTION: `${s.point}=exit` }, dataDir);
    servers.push(dying);
    const end = await Promise.race([dying.server.exited, sleep(90_000, 'still running', { ref: false })]);
    t.is(end, 'SIGKILL', `its recovery died at ${s.point}: ${dying.server.output().slice(-2000)}`);
    await leftAt(t, reader, kindOf(s.point), stepOf(s.point));
  }

  const second = await bootServer({ ...PROCESS_ENV, ...dbEnv }, dataDir);
  servers.push(second);
  const r = reader;
  await recovered(t, r, s, { user, seats, orderId }, async () => {
    const sagas = await settledSagas(r, { timeoutMs: 15_000 });
    // The sweepers pass once more; then nothing moves while the tables are read one by one.
    await sleep(3 * SWEEP_MS);
    await stopServer(second.server);
    return sagas;
  });
}

for (const kind of DATABASES) {
  for (const s of SCENARIOS) {
    test(`[${kind}] a crash (SIGKILL) at ${s.point}: after a restart no saga runs, the invariants hold and the ${s.flow} is at an allowed end`, (t) =>
      slot(() => crashCase(t, kind, s)));
  }
}

// In process: a fault point that throws or a call that hangs, then a restart on the same database
// whose clock is past the saga's lease, and recovery ticks that the test runs.
const PAST_LEASE_MS = 30_000;
const PAST_HOLD_MS = 400_000;
// Sweepers and recovery tick only when the test says so (and recovery once at start).
const QUIET = { SWEEP_INTERVAL_MS: '3600000' };

interface InProcessCase {
  faults: string;
  timeoutMs: string;
  /** What the request that met the fault answered. */
  answer: (last: Response | Error) => void;
  /** Where the saga stops: [kind, step]. */
  left: [string, string];
  /** A second process, past the hold, whose recovery meets this point (armed as an error) and whose sweepers run. */
  then?: string;
  /** The order's status once that second process is done. */
  thenOrder?: string;
}

async function faultThenRestart(t: ExecutionContext, kind: DbKind, s: Scenario, c: InProcessCase) {
  const app = await startApp(kind, { ...QUIET, FAULT_INJECTION: c.faults, INTERNAL_TIMEOUT_MS: c.timeoutMs });
  let current: TestApp | undefined;
  t.teardown(async () => {
    await current?.close();
    await app.close();
  });
  const { user, seats } = await setUp(app);
  const { orderId, last } = await runFlow(t, app, s, user, seats);
  c.answer(last);
  await leftAt(t, kernelReader(app.kernel), ...c.left);
  await app.running.close();

  const clock = manualClock();
  if (c.then) {
    clock.advance(PAST_HOLD_MS);
    current = await restartApp(app, { FAULT_INJECTION: `${c.then}=error` }, clock);
    const { jobs } = current.kernel;
    await jobs.run('orchestrator', 'saga-recovery');
    await jobs.run('event', 'hold-sweeper');
    await jobs.run('order', 'order-sweeper');
    const reader = kernelReader(current.kernel);
    await leftAt(t, reader, kindOf(c.then), stepOf(c.then));
    if (c.thenOrder) {
      const [row] = await reader.all('order', (table) => `select status from ${table('orders')} where id = ?`, [
        orderId,
      ]);
      t.is(row?.status, c.thenOrder, `the order is ${c.thenOrder} before the last recovery`);
    }
    await current.close();
  }
  clock.advance(PAST_LEASE_MS);
  const again = await restartApp(app, { FAULT_INJECTION: '' }, clock);
  current = again;
  const { jobs } = again.kernel;
  const reader = kernelReader(again.kernel);
  const settle = async () => {
    const sagas = await settledSagas(reader, {
      timeoutMs: 10_000,
      poke: () => jobs.run('orchestrator', 'saga-recovery'),
    });
    await jobs.run('event', 'hold-sweeper');
    await jobs.run('order', 'order-sweeper');
    return sagas;
  };
  await recovered(t, reader, s, { user, seats, orderId }, settle, () => clock.now());
}

/** The failed request answered a server error in the envelope: neither success nor a refusal. */
function serverError(t: ExecutionContext, s: Scenario) {
  return (last: Response | Error) => {
    if (last instanceof Error) return t.fail(`the ${s.flow} got no answer: ${shown(last)}`);
    t.true(
      last.status >= 500 && last.status < 600,
      `the ${s.flow} with ${faultsOf(s, 'error')} answered ${shown(last)}`,
    );
    t.is(last.body?.success, false, shown(last));
    t.log(`answered ${last.status} ${last.body?.error_code}`);
  };
}

for (const kind of DATABASES) {
  for (const s of SCENARIOS) {
    const stop = s.via ?? s.point;
    test(`[${kind}] in process, a failure (error) at ${s.point} answers 5xx; after a restart recovery leaves the invariants and an allowed end`, (t) =>
      slot(() =>
        faultThenRestart(t, kind, s, {
          faults: faultsOf(s, 'error'),
          timeoutMs: '1000',
          answer: serverError(t, s),
          left: [kindOf(stop), stepOf(stop)],
          then: s.via && s.point,
        }),
      ));
  }

  // Sold and paid, then the hold's time passes before recovery: the sweeper ends the order
  // EXPIRED first, and the sale still wins.
  const late: Scenario = { point: 'pay.order', flow: 'pay', forward: true };
  test(`[${kind}] in process, a pay stopped at pay.order whose order the sweeper ends EXPIRED before recovery still ends CONFIRMED`, (t) =>
    slot(() =>
      faultThenRestart(t, kind, late, {
        faults: 'pay.order=error',
        timeoutMs: '1000',
        answer: serverError(t, late),
        left: ['pay', 'order'],
        then: 'pay.order',
        thenOrder: 'EXPIRED',
      }),
    ));

  // A call whose answer never comes: the pay gives up at the deadline, and never claims success.
  for (const [point, step] of [
    ['event.confirmOrder', 'seats'],
    ['user.debit', 'debit'],
  ]) {
    const s: Scenario = { point, flow: 'pay' };
    test(`[${kind}] in process, a pay whose ${point} hangs answers 503 SERVICE_UNAVAILABLE, not 200; after a restart it completes or refunds`, (t) =>
      slot(() =>
        faultThenRestart(t, kind, s, {
          faults: `${point}=hang`,
          timeoutMs: '500',
          answer: (last) => {
            if (last instanceof Error) return t.fail(`the pay got no answer: ${shown(last)}`);
            isError(t, last, 503, 'SERVICE_UNAVAILABLE');
          },
          left: ['pay', step],
        }),
      ));
  }
}
