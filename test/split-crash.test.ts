import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { DATABASES, type DbKind, type Response, TEST_ADMIN } from './helpers/app.js';
import {
  checkInvariants,
  crashEnv,
  isAllowed,
  type Outcome,
  payOutcome,
  pgReader,
  pool,
  type Reader,
  readSagas,
  remoteApp,
  type SagaRow,
  type Snapshot,
  settledSagas,
  snapshot,
  sqliteReader,
  stepOf,
  stopServer,
} from './helpers/crash.js';
import { createEvent } from './helpers/events.js';
import { type OtpCatcher, otpWebhook, WEBHOOK } from './helpers/otp-catcher.js';
import { bought, held, pay } from './helpers/purchase.js';
import { type Slices, spawnSlices } from './helpers/split.js';
import { codesIn, confirm, type Deal, initiated, transferOf } from './helpers/transfers.js';
import { grant, login, newUser, type TestUser } from './helpers/users.js';

/**
 * The orchestrator slice dies in the middle of a flow while the user, order and event slices live
 * on: four processes on one database (one SQLite directory, or one PostgreSQL database with a
 * schema each), the orchestrator armed with one fault point (`FAULT_INJECTION=<point>=exit`, a
 * SIGKILL of its own process right after the saga has recorded the step it names, before the
 * step's call). The test sees the request fail without an answer and the process end by SIGKILL,
 * checks in the databases that the flow was cut half-way (money moved, seat not yet), starts the
 * orchestrator slice again without the fault, and lets its saga recovery finish the flow; then
 * every invariant holds in the databases, read directly, and the API tells the same end.
 *
 * Each database has one deployment for all its scenarios, run one after another: the user, order
 * and event slices stay up (the same processes) through every crash of the orchestrator slice,
 * which is stopped, started armed, killed and started again in each scenario. Both flows go
 * forward after these points: a pay whose debit went through is finished (the seat is still held
 * for it, or already sold), and a confirm both parties agreed to is completed.
 */

interface Scenario {
  point: string;
  flow: 'pay' | 'confirm';
  /** Where the point cuts the flow, for the test's title. */
  between: string;
}

const SCENARIOS: Scenario[] = [
  { point: 'pay.seats', flow: 'pay', between: 'after the debit, before the seat is sold' },
  { point: 'pay.order', flow: 'pay', between: 'after the seat is sold, before the order is confirmed' },
  { point: 'confirm.owner', flow: 'confirm', between: 'after the price moved, before the seat changes owner' },
  { point: 'confirm.release', flow: 'confirm', between: 'after the seat moved, before the price is released' },
];

const GRANTED = 1000;
const GRANTED_CENTS = GRANTED * 100;
/** The seat costs 149.50 (CAT1); the transfer 60. */
const PRICE = 14950;
const AMOUNT = 6000;
const SWEEP_MS = 200;

const describe = (sagas: SagaRow[]) => sagas.map((s) => `${s.kind} ${s.step} ${s.status}`).join('; ') || 'none';
const shown = (r: Response | Error) => (r instanceof Error ? r.message : `${r.status} ${JSON.stringify(r.body)}`);

const user = (snap: Snapshot, u: TestUser) => snap.users.find((x) => x.id === u.userId)!;
const seatRow = (snap: Snapshot, id: string) => snap.seats.find((x) => x.id === id)!;

/** A confirm after recovery: COMPLETED, the seat the buyer's, the price the seller's, nothing frozen. */
function confirmOutcome(snap: Snapshot, deal: Deal, transferId: string): Outcome {
  const problems: string[] = [];
  const transfer = snap.transfers.find((x) => x.id === transferId);
  if (transfer?.status !== 'COMPLETED') problems.push(`the transfer is ${transfer?.status}, not COMPLETED`);
  const seat = seatRow(snap, deal.seat);
  if (seat.owner_user_id !== deal.buyer.userId)
    problems.push(`the seat is owned by ${seat.owner_user_id}, not the buyer`);
  const want = { seller: GRANTED_CENTS - PRICE + AMOUNT, buyer: GRANTED_CENTS - AMOUNT };
  for (const [who, u] of [
    ['seller', deal.seller],
    ['buyer', deal.buyer],
  ] as const) {
    const row = user(snap, u);
    if (row.credit_balance !== want[who] || row.frozen_credits !== 0) {
      problems.push(`the ${who} has ${row.credit_balance} + ${row.frozen_credits} frozen, not ${want[who]} + 0`);
    }
    const net = snap.ledger
      .filter((l) => l.user_id === u.userId && l.reference_id === transferId)
      .reduce((sum, l) => sum + l.amount, 0);
    const moved = who === 'seller' ? AMOUNT : -AMOUNT;
    if (net !== moved) problems.push(`the ${who}'s ledger moved ${net} net for the transfer, not ${moved}`);
  }
  const sagas = snap.sagas.filter((x) => x.kind === 'confirm' && x.order_id === transferId);
  if (sagas.length !== 1 || sagas[0].status !== 'DONE') problems.push(`confirm sagas: ${describe(sagas)}`);
  return { outcome: `${transfer?.status}, seat with the buyer`, problems };
}

async function leftAt(t: ExecutionContext, reader: Reader, kind: string, step: string) {
  const sagas = await readSagas(reader);
  t.true(
    sagas.some((s) => s.kind === kind && s.step === step && s.status === 'RUNNING'),
    `a ${kind} saga is left RUNNING at step ${step}; sagas: ${describe(sagas)}`,
  );
}

/** One deployment per database: four slices whose orchestrator the scenarios kill and restart in turn. */
interface Deployment {
  slices: Slices;
  reader: Reader;
  hook: OtpCatcher;
  admin: TestUser;
  /** The pids of the user, order and event slices, which live through every scenario. */
  others: Map<string, number | undefined>;
  /** Credits granted so far in the deployment, cents. */
  granted: number;
}

const closers: (() => unknown)[] = [];
const fileScope = { teardown: (fn: () => unknown) => void closers.push(fn) };
test.after.always(async () => {
  for (const close of closers.reverse()) await close();
});

const deployments = new Map<DbKind, Promise<Deployment>>();
function deployment(kind: DbKind): Promise<Deployment> {
  let d = deployments.get(kind);
  if (!d) {
    d = (async () => {
      const hook = await otpWebhook(fileScope);
      const slices = await spawnSlices(fileScope, kind, {
        ...crashEnv(SWEEP_MS),
        ...WEBHOOK(hook.url),
        ADMIN_EMAIL: TEST_ADMIN.email,
        ADMIN_PASSWORD: TEST_ADMIN.password,
      });
      const reader = slices.databaseUrl ? await pgReader(slices.databaseUrl) : sqliteReader(slices.dataDir);
      fileScope.teardown(() => reader.close());
      const admin = await login(remoteApp(slices.url('user')), TEST_ADMIN.email, TEST_ADMIN.password);
      const others = new Map(OTHERS.map((m) => [m, slices.running.get(m)?.child.pid]));
      return { slices, reader, hook, admin, others, granted: 0 };
    })();
    deployments.set(kind, d);
  }
  return d;
}

const OTHERS = ['user', 'order', 'event'] as const;

// The scenarios of one database run one after another on its deployment; the two databases side by side.
const lanes = new Map<DbKind, ReturnType<typeof pool>>();
const lane = (kind: DbKind) => {
  if (!lanes.has(kind)) lanes.set(kind, pool(1));
  return lanes.get(kind)!;
};

async function orchestratorDies(t: ExecutionContext, kind: DbKind, s: Scenario) {
  const d = await deployment(kind);
  const { slices, reader, hook, admin } = d;
  const users = remoteApp(slices.url('user'));
  const orders = remoteApp(slices.url('order'));
  const flows = remoteApp(slices.url('orchestrator'));

  // The orchestrator slice alone is started again, armed with the scenario's point.
  await stopServer(slices.running.get('orchestrator')!);
  await slices.restart('orchestrator', { FAULT_INJECTION: `${s.point}=exit` });

  const event = await createEvent(remoteApp(slices.url('event')), admin, {
    rows: [{ row_number: 'A', seats: 2, category: 'CAT1' }],
  });
  const seat = event.seats[0].seat_id;
  const buyer = await newUser(users);
  await grant(users, admin, buyer.userId, GRANTED);
  d.granted += GRANTED_CENTS;

  // Up to the request that meets the point, through the armed orchestrator (its other points are not armed).
  let last: Response | Error;
  let orderId: string | undefined;
  let transferId: string | undefined;
  let deal: Deal | undefined;
  if (s.flow === 'pay') {
    orderId = (await held(flows, buyer, seat)).order_id as string;
    last = await pay(flows, buyer, orderId).catch((err: Error) => err);
  } else {
    const seller = await newUser(users);
    await grant(users, admin, seller.userId, GRANTED);
    d.granted += GRANTED_CENTS;
    await bought(flows, seller, seat);
    deal = { seat, seller, buyer, credits: AMOUNT / 100 };
    transferId = await initiated(flows, deal);
    const codes = await codesIn(hook, transferId, deal);
    last = await confirm(flows, buyer, transferId, codes).catch((err: Error) => err);
  }
  const dead = slices.running.get('orchestrator')!;
  t.true(last instanceof Error, `the ${s.flow} got no answer from a slice that died at ${s.point}: ${shown(last)}`);
  t.is(await dead.exited, 'SIGKILL', `the orchestrator slice was killed at ${s.point}`);
  for (const m of OTHERS) {
    const server = slices.running.get(m)!;
    t.true(server.child.exitCode === null && server.child.pid === d.others.get(m), `the ${m} slice lives on`);
  }

  // Cut half-way: the saga is RUNNING at the point's step, and the tables show the money moved ahead of the seat.
  await leftAt(t, reader, s.flow, stepOf(s.point));
  const mid = await snapshot(reader);
  const seatMid = seatRow(mid, seat);
  if (s.point === 'pay.seats') {
    t.is(user(mid, buyer).credit_balance, GRANTED_CENTS - PRICE, 'debited before the crash');
    t.is(seatMid.status, 'HELD', 'the seat is not sold yet');
  } else if (s.point === 'pay.order') {
    t.is(user(mid, buyer).credit_balance, GRANTED_CENTS - PRICE, 'debited before the crash');
    t.is(seatMid.status, 'SOLD', 'the seat is sold');
    t.is(mid.orders.find((o) => o.id === orderId)?.status, 'PENDING', 'the order is not confirmed yet');
  } else {
    const { seller } = deal!;
    t.is(user(mid, buyer).credit_balance, GRANTED_CENTS - AMOUNT, "the buyer's price has left");
    t.is(user(mid, seller).frozen_credits, AMOUNT, "it waits in the seller's frozen credits");
    const owner = s.point === 'confirm.owner' ? seller : buyer;
    t.is(seatMid.owner_user_id, owner.userId, `the seat is still the ${owner === seller ? "seller's" : "buyer's"}`);
  }

  // Started again without the fault; its recovery takes the saga once the dead runner's lease is out.
  const restarted = performance.now();
  await slices.restart('orchestrator');
  const up = Math.round(performance.now() - restarted);
  const sagas = await settledSagas(reader, { timeoutMs: 30_000 });
  t.log(
    `${s.point}: the orchestrator slice answered /health ${up} ms after its restart; every saga settled ${Math.round(performance.now() - restarted)} ms after it`,
  );
  t.deepEqual(
    sagas.filter((x) => x.status === 'RUNNING').map((x) => `${x.kind} ${x.step}`),
    [],
    `no saga is left RUNNING; sagas: ${describe(sagas)}`,
  );
  // The sweepers pass once more before the tables are read.
  await sleep(3 * SWEEP_MS);
  const snap = await snapshot(reader);
  checkInvariants(t, snap, { granted: d.granted });

  if (s.flow === 'pay') {
    // The money was taken before the crash: recovery must sell the seat and confirm the order.
    isAllowed(
      t,
      payOutcome(snap, {
        orderId: orderId!,
        userId: buyer.userId,
        seatIds: [seat],
        granted: GRANTED_CENTS,
        forward: true,
      }),
    );
    const order = await orders.request('GET', `/api/orders/${orderId}`, { token: buyer.token });
    t.like(order.body.data, { status: 'CONFIRMED', seat_ids: [seat] }, shown(order));
    const again = await pay(flows, buyer, orderId!);
    t.is(again.body.error_code, 'ORDER_ALREADY_CONFIRMED', `a second pay after recovery: ${shown(again)}`);
  } else {
    isAllowed(t, confirmOutcome(snap, deal!, transferId!));
    const transfer = await transferOf(orders, buyer, transferId!);
    t.is(transfer.body.data?.status, 'COMPLETED', shown(transfer));
    const again = await confirm(flows, buyer, transferId!, await codesIn(hook, transferId!, deal!));
    t.is(again.body.error_code, 'TRANSFER_INVALID_STATE', `a second confirm after recovery: ${shown(again)}`);
  }
  // The seat is the buyer's ticket, as the restarted orchestrator lists it.
  const tickets = await flows.request('GET', '/api/tickets', { token: buyer.token });
  t.deepEqual(
    tickets.body.data?.map((x: { seat_id: string }) => x.seat_id),
    [seat],
    shown(tickets),
  );
}

for (const kind of DATABASES) {
  for (const s of SCENARIOS) {
    test(`[${kind}] the orchestrator slice is SIGKILLed at ${s.point} (${s.between}); restarted alone, its recovery finishes the ${s.flow} and every invariant holds`, (t) =>
      lane(kind)(() => orchestratorDies(t, kind, s)));
  }
}
