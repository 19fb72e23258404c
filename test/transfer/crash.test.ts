import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { DATABASES, type DbKind, freshDatabase, type Response, startApp, type TestApp } from '../helpers/app.js';
import {
  bootServer,
  checkInvariants,
  crashEnv,
  isAllowed,
  kernelReader,
  type Outcome,
  pgReader,
  pool,
  type Reader,
  readSagas,
  remoteApp,
  restartApp,
  type SagaRow,
  type Snapshot,
  type Spawned,
  settledSagas,
  snapshot,
  sqliteReader,
  stopServer,
} from '../helpers/crash.js';
import { createEvent, newStaff } from '../helpers/events.js';
import { type OtpCatcher, otpWebhook, WEBHOOK } from '../helpers/otp-catcher.js';
import { bought } from '../helpers/purchase.js';
import { act, codesIn, confirm, type Deal, initiated } from '../helpers/transfers.js';
import { adminLogin, grant, newUser, type TestUser } from '../helpers/users.js';

/**
 * The product's invariant 6 for transfers: a crash at any step of a confirm or of a reverse
 * leaves, after a restart, a state that keeps the invariants without manual repair, and the
 * transfer at the end its recovery must reach. Each case runs on a fresh database in three
 * processes (or kernels): one sets the transfer up, one meets the fault (SIGKILL with `exit`, a
 * 5xx with `error` in process), and one without faults recovers. Both sagas go forward: the
 * parties agreed to the confirm, and an admin decided the reversal. The one compensation, a seat
 * move the event module refuses (the seller used the ticket meanwhile), is met for real.
 */

interface Scenario {
  /** The fault point: `<saga kind>.<step>`, or `.done` after the last step. */
  point: string;
  flow: 'confirm' | 'reverse';
  /** The seller uses the ticket at the door before the confirm: its seat move is refused. */
  used?: boolean;
  /** The transfer's status once recovery is done. */
  end: 'COMPLETED' | 'FAILED' | 'REVERSED';
  /** The step the saga is left at (the point's step; `.done` leaves it at the last one). */
  step: string;
}

const SCENARIOS: Scenario[] = [
  { point: 'confirm.claim', flow: 'confirm', end: 'COMPLETED', step: 'claim' },
  { point: 'confirm.pay', flow: 'confirm', end: 'COMPLETED', step: 'pay' },
  { point: 'confirm.owner', flow: 'confirm', end: 'COMPLETED', step: 'owner' },
  { point: 'confirm.release', flow: 'confirm', end: 'COMPLETED', step: 'release' },
  { point: 'confirm.complete', flow: 'confirm', end: 'COMPLETED', step: 'complete' },
  { point: 'confirm.done', flow: 'confirm', end: 'COMPLETED', step: 'complete' },
  { point: 'confirm.refund', flow: 'confirm', used: true, end: 'FAILED', step: 'refund' },
  { point: 'confirm.fail', flow: 'confirm', used: true, end: 'FAILED', step: 'fail' },
  { point: 'dispute.check', flow: 'reverse', end: 'REVERSED', step: 'check' },
  { point: 'dispute.seatback', flow: 'reverse', end: 'REVERSED', step: 'seatback' },
  { point: 'dispute.refund', flow: 'reverse', end: 'REVERSED', step: 'refund' },
  { point: 'dispute.reversed', flow: 'reverse', end: 'REVERSED', step: 'reversed' },
  { point: 'dispute.done', flow: 'reverse', end: 'REVERSED', step: 'reversed' },
];

const GRANTED = 1000;
const GRANTED_CENTS = 2 * GRANTED * 100;
/** The seat costs 149.50; the transfer 60. */
const PRICE = 14950;
const AMOUNT = 6000;
const SWEEP_MS = 200;
const PROCESS_ENV = crashEnv(SWEEP_MS);

interface Setup {
  deal: Deal;
  transferId: string;
  codes: { seller: string; buyer: string };
}

/**
 * A seller who bought a seat and a buyer, both granted GRANTED; a transfer initiated and its codes
 * delivered. For a reverse, it is confirmed and disputed by the buyer; with `used`, the seller's
 * ticket is scanned in at the door.
 */
async function setUp(app: TestApp, hook: OtpCatcher, s: Scenario): Promise<Setup> {
  const admin = await adminLogin(app);
  const [seller, buyer] = [await newUser(app), await newUser(app)];
  for (const u of [seller, buyer]) await grant(app, admin, u.userId, GRANTED);
  const event = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 2, category: 'CAT1' }] });
  const seat = event.seats[0].seat_id;
  await bought(app, seller, seat);
  const deal = { seat, seller, buyer, credits: AMOUNT / 100 };
  const transferId = await initiated(app, deal);
  const codes = await codesIn(hook, transferId, deal);
  if (s.used) {
    const staff = await newStaff(app, admin);
    const qr = (await app.request('GET', `/api/tickets/${seat}/qr`, { token: seller.token })).body.data.qr_payload;
    const scan = await app.request('POST', '/api/verify', {
      token: staff.token,
      body: { qr_payload: qr, hall_id: event.hallId },
    });
    if (scan.body.data?.result !== 'SUCCESS') throw new Error(`scan: ${JSON.stringify(scan.body)}`);
  }
  if (s.flow === 'reverse') {
    const done = await confirm(app, buyer, transferId, codes);
    if (done.status !== 200) throw new Error(`confirm: ${done.status} ${JSON.stringify(done.body)}`);
    const disputed = await act(app, buyer, 'dispute', transferId);
    if (disputed.status !== 200) throw new Error(`dispute: ${disputed.status} ${JSON.stringify(disputed.body)}`);
  }
  return { deal, transferId, codes };
}

/** The request that meets the fault: the confirm by the buyer, or the reverse by the admin. */
async function lastRequest(app: TestApp, s: Scenario, set: Setup, admin: TestUser) {
  const request =
    s.flow === 'confirm'
      ? confirm(app, set.deal.buyer, set.transferId, set.codes)
      : act(app, admin, 'reverse', set.transferId);
  return request.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
}

/** The saga kind a scenario's flow runs. */
const kindOf = (s: Scenario) => (s.flow === 'confirm' ? 'confirm' : 'dispute');

const describe = (sagas: SagaRow[]) => sagas.map((x) => `${x.kind} ${x.step} ${x.status}`).join('; ') || 'none';

async function leftAt(t: ExecutionContext, reader: Reader, kind: string, step: string) {
  const sagas = await readSagas(reader);
  t.true(
    sagas.some((x) => x.kind === kind && x.step === step && x.status === 'RUNNING'),
    `a ${kind} saga is left RUNNING at step ${step}; sagas: ${describe(sagas)}`,
  );
}

/** Where the seat, the balances and the ledger must be for the transfer's end. */
function transferOutcome(snap: Snapshot, s: Scenario, set: Setup): Outcome {
  const problems: string[] = [];
  const { seller, buyer, seat } = set.deal;
  const transfer = snap.transfers.find((tr) => tr.id === set.transferId);
  const seatRow = snap.seats.find((x) => x.id === seat);
  const user = (u: TestUser) => snap.users.find((x) => x.id === u.userId)!;
  if (!transfer || !seatRow) return { outcome: 'lost', problems: ['the transfer or the seat is gone'] };
  if (transfer.status !== s.end) problems.push(`the transfer is ${transfer.status}, not ${s.end}`);
  const paid = s.end === 'COMPLETED';
  const owner = paid ? buyer : seller;
  if (seatRow.owner_user_id !== owner.userId)
    problems.push(`the seat is owned by ${seatRow.owner_user_id}, not the ${paid ? 'buyer' : 'seller'}`);
  const expect = {
    seller: GRANTED * 100 - PRICE + (paid ? AMOUNT : 0),
    buyer: GRANTED * 100 - (paid ? AMOUNT : 0),
  };
  for (const [who, u] of [
    ['seller', seller],
    ['buyer', buyer],
  ] as const) {
    const row = user(u);
    if (row.credit_balance !== expect[who] || row.frozen_credits !== 0) {
      problems.push(`the ${who} has ${row.credit_balance} + ${row.frozen_credits} frozen, not ${expect[who]} + 0`);
    }
    const net = snap.ledger
      .filter((l) => l.user_id === u.userId && l.reference_id === set.transferId)
      .reduce((sum, l) => sum + l.amount, 0);
    const want = paid ? (who === 'seller' ? AMOUNT : -AMOUNT) : 0;
    if (net !== want) problems.push(`the ${who}'s ledger moved ${net} net for the transfer, not ${want}`);
  }
  const kind = kindOf(s);
  const sagas = snap.sagas.filter((x) => x.order_id === set.transferId && x.kind === kind);
  const finished = s.end === 'FAILED' ? 'COMPENSATED' : 'DONE';
  if (!sagas.some((x) => x.status === finished)) problems.push(`no ${kind} saga ended ${finished}: ${describe(sagas)}`);
  return { outcome: `${transfer.status}, seat with the ${paid ? 'buyer' : 'seller'}`, problems };
}

async function recovered(t: ExecutionContext, reader: Reader, s: Scenario, set: Setup, sagas: SagaRow[], now?: number) {
  t.log(`sagas: ${describe(sagas)}`);
  t.deepEqual(
    sagas.filter((x) => x.status === 'RUNNING'),
    [],
    'no saga is RUNNING once recovery has had its time',
  );
  const snap = await snapshot(reader, now);
  checkInvariants(t, snap, { granted: GRANTED_CENTS });
  isAllowed(t, transferOutcome(snap, s, set));
}

const slot = pool(3);
const shown = (r: Response | Error) => (r instanceof Error ? r.message : `${r.status} ${JSON.stringify(r.body)}`);

async function crashCase(t: ExecutionContext, kind: DbKind, s: Scenario) {
  const db = kind === 'postgres' ? await freshDatabase('postgres') : undefined;
  const dbEnv: Record<string, string> = db ? { DATABASE_URL: db.env.DATABASE_URL } : {};
  const hook = await otpWebhook(t);
  const env = { ...PROCESS_ENV, ...dbEnv, ...WEBHOOK(hook.url) };
  const servers: Spawned[] = [];
  let reader: Reader | undefined;
  t.teardown(async () => {
    await reader?.close();
    for (const server of servers.reverse()) server.server.cleanup();
    await db?.drop();
  });

  const first = await bootServer(env);
  servers.push(first);
  const { dataDir } = first.server;
  const set = await setUp(remoteApp(first.url), hook, s);
  await stopServer(first.server);

  const dying = await bootServer({ ...env, FAULT_INJECTION: `${s.point}=exit` }, dataDir);
  servers.push(dying);
  const app = remoteApp(dying.url);
  const last = await lastRequest(app, s, set, await adminLogin(app));
  if (!(last instanceof Error)) return t.fail(`the ${s.flow} answered ${shown(last)}: ${s.point} was not reached`);
  t.is(await dying.server.exited, 'SIGKILL', `the process died at ${s.point}`);
  reader = db ? await pgReader(db.env.DATABASE_URL) : sqliteReader(dataDir);
  await leftAt(t, reader, kindOf(s), s.step);

  const second = await bootServer(env, dataDir);
  servers.push(second);
  const sagas = await settledSagas(reader, { timeoutMs: 15_000 });
  await sleep(3 * SWEEP_MS);
  await stopServer(second.server);
  await recovered(t, reader, s, set, sagas);
}

for (const kind of DATABASES) {
  for (const s of SCENARIOS) {
    test(`[${kind}] a crash (SIGKILL) at ${s.point}: after a restart the ${s.flow} ends ${s.end} and the invariants hold`, (t) =>
      slot(() => crashCase(t, kind, s)));
  }
}

// In process: the fault point throws (the request answers 5xx); a restart whose clock is past the
// saga's lease runs the recovery the test ticks.
const PAST_LEASE_MS = 30_000;
const QUIET = { SWEEP_INTERVAL_MS: '3600000', INTERNAL_TIMEOUT_MS: '1000' };

/** How the faulty process fails: a point that throws (5xx), or a port call that hangs (503 at its deadline). */
interface Failure {
  faults: string;
  timeoutMs: string;
  answer(t: ExecutionContext, last: Response): void;
}

const thrown = (s: Scenario): Failure => ({
  faults: `${s.point}=error`,
  timeoutMs: '1000',
  answer(t, last) {
    t.true(last.status >= 500 && last.status < 600, `the ${s.flow} at ${s.point} answered ${shown(last)}`);
    t.is(last.body?.success, false, shown(last));
  },
});

async function faultThenRestart(t: ExecutionContext, kind: DbKind, s: Scenario, failure = thrown(s)) {
  const hook = await otpWebhook(t);
  const app = await startApp(kind, { ...QUIET, ...WEBHOOK(hook.url) });
  const apps: TestApp[] = [];
  t.teardown(async () => {
    for (const a of apps.reverse()) await a.close();
    await app.close();
  });
  hook.settle = () => app.kernel.jobs.run('user', 'outbox');
  const set = await setUp(app, hook, s);
  await app.running.close();

  const failing = await restartApp(app, { FAULT_INJECTION: failure.faults, INTERNAL_TIMEOUT_MS: failure.timeoutMs });
  apps.push(failing);
  const last = await lastRequest(failing, s, set, await adminLogin(failing));
  if (last instanceof Error) return t.fail(`the ${s.flow} got no answer: ${last.message}`);
  failure.answer(t, last);
  await leftAt(t, kernelReader(failing.kernel), kindOf(s), s.step);
  await failing.close();

  const clock = manualClock();
  clock.advance(PAST_LEASE_MS);
  const again = await restartApp(app, { FAULT_INJECTION: '' }, clock);
  apps.push(again);
  const reader = kernelReader(again.kernel);
  const sagas = await settledSagas(reader, {
    timeoutMs: 10_000,
    poke: () => again.kernel.jobs.run('orchestrator', 'saga-recovery'),
  });
  await recovered(t, reader, s, set, sagas, clock.now());
}

for (const kind of DATABASES) {
  for (const s of SCENARIOS) {
    test(`[${kind}] in process, a failure (error) at ${s.point} answers 5xx; after a restart the ${s.flow} ends ${s.end}`, (t) =>
      slot(() => faultThenRestart(t, kind, s)));
  }
}

// A call whose answer never comes: the confirm gives up at the deadline with 503, never 200, and
// recovery completes it once the call answers again.
for (const kind of DATABASES) {
  for (const [point, step] of [
    ['user.moveCredits', 'pay'],
    ['event.setOwner', 'owner'],
    ['user.releaseCredits', 'release'],
  ]) {
    const s: Scenario = { point, flow: 'confirm', end: 'COMPLETED', step };
    test(`[${kind}] in process, a confirm whose ${point} hangs answers 503, not 200; after a restart it completes`, (t) =>
      slot(() =>
        faultThenRestart(t, kind, s, {
          faults: `${point}=hang`,
          timeoutMs: '500',
          answer: (tt, last) => {
            tt.is(last.status, 503, shown(last));
            tt.is(last.body?.error_code, 'SERVICE_UNAVAILABLE', shown(last));
          },
        }),
      ));
  }
}
