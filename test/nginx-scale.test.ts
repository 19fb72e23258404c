import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import pg from 'pg';
import { PG_URL, type Response, TEST_ADMIN } from './helpers/app.js';
import { checkInvariants, pgReader, remoteApp, settledSagas, snapshot } from './helpers/crash.js';
import { createEvent } from './helpers/events.js';
import { NGINX, startNginx } from './helpers/nginx.js';
import { freePort, type Server, spawnServer, waitForHealth } from './helpers/process.js';
import { balanceOf, cents } from './helpers/purchase.js';
import { type Buyer, newBuyers, outcome, tally } from './helpers/sale.js';
import { type Slice, splitEnv } from './helpers/split.js';
import { login, type TestUser } from './helpers/users.js';

/**
 * Several instances of the hot slices behind the shipped edge (README, "Production: split
 * deployment"): two orchestrator and two event processes, one user and one order process, on one
 * fresh PostgreSQL database, behind Debian's nginx running deploy/nginx.conf with both instances
 * listed in the orchestrator and event upstreams. A flash sale goes through the edge's one base
 * URL: buyers reserve 1–4 seats and pay, hoarders reserve up to the hold limit and let their holds
 * run out, with short holds, sweeps and leases so that the sweepers of both event instances and
 * saga recovery run during the sale. Mid-sale the orchestrator instance that holds the
 * saga-recovery lease is SIGKILLed and not restarted: the edge sends everything to the survivor,
 * whose recovery takes the lease once it has run out and finishes the dead instance's sagas once
 * theirs have. Afterwards the databases hold the product's invariants (crash.ts), both instances
 * of each hot slice served requests (their request log lines), and the leased jobs ran under
 * their leases (every change of holder, recorded by a trigger on the kernel's job_leases tables,
 * came after the previous holder's lease had run out; every recovery tick ran under its
 * instance's lease; every recovered saga was recovered once).
 */

const ROWS = 10;
const SEATS_PER_ROW = 50;
const BUYERS = 60;
const HOARDERS = 6;
/** The hoarders take seats up to the limit and let them expire this many times. */
const HOARD_ROUNDS = 4;
const HOLD_TTL_SECONDS = 3;
const MAX_SEATS_PER_ORDER = 4;
const MAX_HELD_SEATS_PER_USER = 6;
const SWEEP_INTERVAL_MS = 250;
const JOB_LEASE_MS = 1500;
/** A saga runner's lease is 3 × this + 2 s (orchestrator/index.ts): 8 s. */
const INTERNAL_TIMEOUT_MS = 2000;
const SAGA_LEASE_MS = 3 * INTERNAL_TIMEOUT_MS + 2000;
/** The kill comes once this share of the seats is sold. */
const KILL_AT = 0.3;
const MAX_STEPS = 400;
/** What nginx's @unavailable answers (deploy/nginx.conf), as opposed to a slice's own 503. */
const EDGE_503 = 'The module serving this route is unavailable; try again shortly.';

const random = (n: number) => Math.floor(Math.random() * n);
const think = (min: number, max: number) => sleep(min + random(max - min));

interface Instance {
  name: string;
  slice: Slice;
  url: string;
  server: Server;
}

interface LogLine {
  time: string;
  level: string;
  msg: string;
  method?: string;
  path?: string;
  status?: number;
  duration_ms?: number;
  job?: string;
  holder?: string;
  saga?: string;
  kind?: string;
  correlation_id?: string;
}

/** An instance's JSON log lines (LOG_LEVEL=debug: requests, job ticks, recoveries). */
function logOf(i: Instance): (LogLine & { at: number })[] {
  const out: (LogLine & { at: number })[] = [];
  for (const line of i.server.output().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const l = JSON.parse(line) as LogLine;
      out.push({ ...l, at: Date.parse(l.time) });
    } catch {}
  }
  return out;
}

/** A request a client sent through the edge, and what it was answered. */
interface Sent {
  route: 'reserve' | 'pay' | 'map';
  correlationId: string;
  userId?: string;
  orderId?: string;
  sent: number;
  answered: number;
  res: Response;
}

const countBy = (xs: string[]) => {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
};

const fromEdge = (r: Sent) => r.res.status === 503 && r.res.body?.message === EDGE_503;

/** Records every change of a job_leases row in public.lease_audit, with the statement's time. */
async function auditLeases(client: pg.Client, schemas: string[]) {
  await client.query(`
    create table public.lease_audit (
      id bigserial primary key, schema text not null, op text not null, name text not null,
      old_holder text, new_holder text, old_expires timestamptz, new_expires timestamptz,
      at timestamptz not null default clock_timestamp())`);
  await client.query(`
    create function public.lease_audit() returns trigger language plpgsql as $$
    begin
      insert into public.lease_audit (schema, op, name, old_holder, new_holder, old_expires, new_expires)
      values (tg_table_schema, tg_op, coalesce(new.name, old.name), old.holder, new.holder, old.expires_at, new.expires_at);
      return null;
    end $$`);
  for (const s of schemas) {
    await client.query(
      `create trigger lease_audit after insert or update or delete on "${s}".job_leases
       for each row execute function public.lease_audit()`,
    );
  }
}

interface AuditRow {
  id: string;
  schema: string;
  op: string;
  name: string;
  old_holder: string | null;
  new_holder: string | null;
  old_expires: Date | null;
  new_expires: Date | null;
}

/** The spans during which each holder held a job's lease: from taking it to its last expiry. */
function leaseSpans(rows: AuditRow[], since: number) {
  const spans: { holder: string; from: number; until: number }[] = [];
  for (const r of rows) {
    if (r.op === 'DELETE') continue;
    const holder = r.new_holder as string;
    const expires = (r.new_expires as Date).getTime();
    const last = spans.at(-1);
    if (last && last.holder === holder && r.op === 'UPDATE' && r.old_holder === holder) {
      last.until = expires;
      continue;
    }
    // The first row seen may be a renewal of a lease taken before the trigger was there.
    const from = r.op === 'UPDATE' && r.old_holder === holder ? since : expires - JOB_LEASE_MS;
    spans.push({ holder, from, until: expires });
  }
  return spans;
}

async function scaledSale(t: ExecutionContext) {
  t.timeout(240_000);
  const began = performance.now();
  const { ports, url, env, databaseUrl } = await splitEnv(t, 'postgres', {
    JWT_SECRET: 'nginx-scale-jwt-secret-0123456789',
    SERVICE_TOKEN: 'nginx-scale-service-token-0123456789',
    ADMIN_EMAIL: TEST_ADMIN.email,
    ADMIN_PASSWORD: TEST_ADMIN.password,
    // debug: the scheduler's "job ran" lines (with the lease holder) beside the request lines.
    LOG_LEVEL: 'debug',
    TRUST_PROXY: 'true',
    HOLD_TTL_SECONDS: String(HOLD_TTL_SECONDS),
    MAX_SEATS_PER_ORDER: String(MAX_SEATS_PER_ORDER),
    MAX_HELD_SEATS_PER_USER: String(MAX_HELD_SEATS_PER_USER),
    SWEEP_INTERVAL_MS: String(SWEEP_INTERVAL_MS),
    JOB_LEASE_MS: String(JOB_LEASE_MS),
    INTERNAL_TIMEOUT_MS: String(INTERNAL_TIMEOUT_MS),
  });
  const logs = mkdtempSync(join(tmpdir(), 'tr-scale-logs-'));
  const instances: Instance[] = [];
  t.teardown(() => {
    for (const i of instances) i.server.cleanup();
    rmSync(logs, { recursive: true, force: true });
  });
  /** One slice process; its output goes to a file, so that a busy test never holds up its writes. */
  const spawn = (name: string, slice: Slice, port: number, extra: Record<string, string> = {}) => {
    const portVar = `${slice.toUpperCase()}_PORT`;
    const server = spawnServer(
      { ...env, MODULES: slice, [portVar]: String(port), ...extra },
      { logFile: join(logs, `${name}.log`) },
    );
    const instance = { name, slice, url: `http://127.0.0.1:${port}`, server };
    instances.push(instance);
    return instance;
  };
  const [event2Port, orchestrator2Port] = [await freePort(), await freePort()];
  // The slices call each other directly by *_URL, never through the edge (which refuses /internal/*
  // to the public). Each orchestrator instance is given its own event instance as EVENT_URL, so that
  // both event instances serve the orchestrators' internal calls as well as the public reads.
  const user = spawn('user', 'user', ports.user);
  const order = spawn('order', 'order', ports.order);
  const event1 = spawn('event-1', 'event', ports.event);
  const orch1 = spawn('orchestrator-1', 'orchestrator', ports.orchestrator, { EVENT_URL: url('event') });
  for (const i of [user, order, event1, orch1]) await waitForHealth(i.server, i.url, 90_000);

  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  t.teardown(() => client.end());
  await auditLeases(client, ['orchestrator', 'event']);
  const auditSince = Date.now();

  // Second instances only once the first ones have migrated their schemas: two processes migrating
  // one fresh schema at once collide (the migrations take no lock; the second fails on a duplicate table).
  const event2 = spawn('event-2', 'event', event2Port);
  const orch2 = spawn('orchestrator-2', 'orchestrator', orchestrator2Port, {
    EVENT_URL: `http://127.0.0.1:${event2Port}`,
  });
  for (const i of [event2, orch2]) await waitForHealth(i.server, i.url, 90_000);
  const orchestrators = [orch1, orch2];
  const partner = new Map([
    [orch1, event1],
    [orch2, event2],
  ]);

  const { edge } = await startNginx(t, {
    user: ports.user,
    order: ports.order,
    event: [ports.event, event2Port],
    orchestrator: [ports.orchestrator, orchestrator2Port],
  });
  const app = remoteApp(edge);
  const reader = await pgReader(databaseUrl as string);
  t.teardown(() => reader.close());

  // Everything from here on goes through the edge's one base URL.
  const admin = await login(app, TEST_ADMIN.email, TEST_ADMIN.password);
  const e = await createEvent(app, admin, {
    rows: Array.from({ length: ROWS }, (_, i) => ({
      row_number: String.fromCharCode(65 + i),
      seats: SEATS_PER_ROW,
      category: i < 3 ? 'CAT1' : 'CAT2',
    })),
  });
  t.is(e.totalSeats, ROWS * SEATS_PER_ROW);
  const price = new Map(e.seats.map((s) => [s.seat_id, cents(s.price)]));
  const cheapest = Math.min(...price.values());
  // Budgets of 400 to 1,400 credits: a little more than the seats are worth in all.
  const buyers = await newBuyers(app, admin, BUYERS, () => (40_000 + random(100_001)) / 100);
  const hoarders = await newBuyers(app, admin, HOARDERS);
  const granted = buyers.reduce((a, b) => a + b.granted, 0);
  const setupMs = Math.round(performance.now() - began);

  const sent: Sent[] = [];
  let sequence = 0;
  /** Sends a request with a correlation id of its own (every slice logs it) and records it; answers the record. */
  const record = async (
    route: Sent['route'],
    call: (headers: Record<string, string>) => Promise<Response>,
    ids: Partial<Sent> = {},
  ) => {
    const correlationId = `scale-${++sequence}`;
    const at = Date.now();
    const res = await call({ 'x-correlation-id': correlationId });
    const r: Sent = { route, ...ids, correlationId, sent: at, answered: Date.now(), res };
    sent.push(r);
    return r;
  };
  const send = async (
    route: Sent['route'],
    call: (headers: Record<string, string>) => Promise<Response>,
    ids: Partial<Sent> = {},
  ) => (await record(route, call, ids)).res;
  const seatMap = (headers: Record<string, string>) => app.request('GET', `/api/events/${e.eventId}`, { headers });
  const reserve = (u: TestUser, seatIds: string[]) => (headers: Record<string, string>) =>
    app.request('POST', '/api/reserve', { token: u.token, body: { seat_ids: seatIds }, headers });
  const pay = (u: TestUser, orderId: string, key?: string) => (headers: Record<string, string>) =>
    app.request('POST', '/api/pay', {
      token: u.token,
      body: { order_id: orderId },
      headers: { ...headers, ...(key ? { 'idempotency-key': key } : {}) },
    });

  const tooMany = await reserve(
    hoarders[0],
    e.seats.slice(0, MAX_SEATS_PER_ORDER + 1).map((s) => s.seat_id),
  )({});
  t.is(tooMany.status, 400, `${MAX_SEATS_PER_ORDER + 1} seats in one order: ${JSON.stringify(tooMany.body)}`);

  const believed = new Set(price.keys());
  let soldOut = false;
  let saleOver = false;
  let refreshing: Promise<void> | undefined;
  /** One seat-map read at a time, shared by every buyer who ran out of seats to try. */
  const refresh = () => {
    refreshing ??= (async () => {
      const map = await send('map', seatMap);
      if (map.status !== 200) return void (await sleep(100));
      const seats = map.body.data.seats as { seat_id: string; status: string }[];
      believed.clear();
      for (const s of seats) if (s.status === 'AVAILABLE') believed.add(s.seat_id);
      if (seats.every((s) => s.status === 'SOLD')) soldOut = true;
      // Only holds left: they are paid for or they run out.
      else if (believed.size === 0) await sleep(200);
    })().finally(() => {
      refreshing = undefined;
    });
    return refreshing;
  };
  /** Up to `want` believed seats within `budget` (any price without one). */
  const pickSeats = (want: number, budget = Number.POSITIVE_INFINITY) => {
    const affordable = [...believed].filter((s) => price.get(s)! <= budget);
    const pick: string[] = [];
    let cost = 0;
    for (let tries = 0; tries < 4 * want && pick.length < want && affordable.length; tries++) {
      const s = affordable[random(affordable.length)];
      if (!pick.includes(s) && cost + price.get(s)! <= budget) {
        pick.push(s);
        cost += price.get(s)!;
      }
    }
    return pick;
  };
  /** Forgets the seats a refusal names (all of them when it names none). */
  const forget = (r: Response, pick: string[]) => {
    const named = (r.body?.details ?? [])
      .map((d: { field: string }) => /^seat_ids\[(\d+)\]$/.exec(d.field))
      .filter(Boolean)
      .map((m: RegExpExecArray) => pick[Number(m[1])]);
    for (const s of named.length ? named : pick) believed.delete(s);
  };

  /** What the buyers were told: seat → order for every 200 pay; orders whose pay's outcome is unknown (5xx). */
  const bought = new Map<string, { orderId: string; userId: string }>();
  const unknownPays = new Set<string>();
  const refusedPays = new Set<string>();
  const unexpected: string[] = [];
  const note = (what: string, r: Response) => unexpected.push(`${what}: ${outcome(r)} ${JSON.stringify(r.body)}`);

  const shop = async (b: Buyer): Promise<string> => {
    let balance = b.granted;
    let unsure = false;
    // Each buyer opens the seat map first.
    await send('map', seatMap);
    for (let step = 0; step < MAX_STEPS; step++) {
      if (soldOut) return 'sold out';
      if (balance < cheapest) return 'credits gone';
      await think(50, 400);
      if (believed.size === 0) {
        await refresh();
        continue;
      }
      const pick = pickSeats(1 + random(MAX_SEATS_PER_ORDER), balance);
      if (pick.length === 0) return 'credits gone';
      const r = await send('reserve', reserve(b, pick), { userId: b.userId });
      if (r.status === 200) {
        for (const s of pick) believed.delete(s);
        const orderId = r.body.data.order_id as string;
        await think(0, 300);
        const p = await send('pay', pay(b, orderId, `pay-${orderId}`), { userId: b.userId, orderId });
        if (p.status === 200) {
          balance = cents(p.body.data.remaining_balance);
          for (const s of pick) bought.set(s, { orderId, userId: b.userId });
        } else if (p.status >= 500) {
          // Charged or not, sold or not: recovery decides; the balance says what it is now.
          unknownPays.add(orderId);
          unsure = true;
          balance = await balanceOf(app, b);
        } else if (outcome(p) === '410 HOLD_EXPIRED' || (unsure && outcome(p) === '402 INSUFFICIENT_CREDITS')) {
          refusedPays.add(orderId);
          balance = await balanceOf(app, b);
        } else {
          note('pay', p);
          return `pay refused: ${outcome(p)}`;
        }
        continue;
      }
      if (r.status >= 500) {
        // A reserve cut short: recovery releases whatever it held.
        for (const s of pick) believed.delete(s);
        unsure = true;
        continue;
      }
      if (['409 SEAT_UNAVAILABLE', '409 SEAT_ALREADY_SOLD'].includes(outcome(r))) {
        forget(r, pick);
        continue;
      }
      // Holds of a reserve cut short count until they are released.
      if (unsure && outcome(r) === '409 HOLD_LIMIT_REACHED') continue;
      note('reserve', r);
      return `reserve refused: ${outcome(r)}`;
    }
    return 'out of steps';
  };

  /** Each hoarder's orders: seats, and the hold's end as the server set it. */
  const hoards = new Map<string, { orderId: string; seats: string[]; heldUntil: number }[]>();
  const limitBreaches: string[] = [];
  let limitRefusals = 0;
  const latePays: Sent[] = [];
  const hoard = async (h: Buyer) => {
    const mine: { orderId: string; seats: string[]; heldUntil: number }[] = [];
    hoards.set(h.userId, mine);
    for (let round = 0; round < HOARD_ROUNDS && !saleOver && !soldOut; round++) {
      const taken: typeof mine = [];
      for (let tries = 0; tries < 10; tries++) {
        await think(50, 300);
        if (believed.size === 0) await refresh();
        const pick = pickSeats(1 + random(MAX_SEATS_PER_ORDER));
        if (pick.length === 0) break;
        const r = await send('reserve', reserve(h, pick), { userId: h.userId });
        if (r.status === 200) {
          for (const s of pick) believed.delete(s);
          const heldUntil = Date.parse(r.body.data.held_until);
          // The server's time of this hold: its end less the TTL. The user's live holds then, ours included.
          const at = heldUntil - HOLD_TTL_SECONDS * 1000;
          const live = mine.filter((o) => o.heldUntil > at).reduce((n, o) => n + o.seats.length, 0) + pick.length;
          if (live > MAX_HELD_SEATS_PER_USER) limitBreaches.push(`${h.email} held ${live} seats at ${at}`);
          const o = { orderId: r.body.data.order_id as string, seats: pick, heldUntil };
          mine.push(o);
          taken.push(o);
          continue;
        }
        if (outcome(r) === '409 HOLD_LIMIT_REACHED') {
          limitRefusals++;
          break;
        }
        if (['409 SEAT_UNAVAILABLE', '409 SEAT_ALREADY_SOLD'].includes(outcome(r))) forget(r, pick);
        else if (r.status < 500) note('hoard', r);
      }
      if (!taken.length) continue;
      // Let every hold of the round run out, and the sweepers free the seats.
      const last = Math.max(...taken.map((o) => o.heldUntil));
      await sleep(Math.max(0, last - Date.now()) + 2 * SWEEP_INTERVAL_MS);
      // Paying for a hold that ran out is refused, and charges nothing.
      const oldest = taken[0];
      const p = await record('pay', pay(h, oldest.orderId), { userId: h.userId, orderId: oldest.orderId });
      latePays.push(p);
      if (p.res.status < 500 && outcome(p.res) !== '410 HOLD_EXPIRED') note('late pay', p.res);
    }
  };

  // The kill: once part of the seats are sold, the orchestrator instance holding the saga-recovery lease.
  let killedAt = 0;
  /** When the test saw it gone: requests sent before then may have reached it. */
  let diedAt = 0;
  let victim: Instance | undefined;
  let runningAtKill: { id: string; kind: string; order_id: string; user_id: string; lease_until: Date }[] = [];
  const killer = (async () => {
    while (bought.size < KILL_AT * e.totalSeats && !saleOver) await sleep(20);
    const [lease] = (
      await client.query(
        `select holder from orchestrator.job_leases where name = 'saga-recovery' and expires_at > now()`,
      )
    ).rows as { holder: string }[];
    victim = orchestrators.find((o) => lease?.holder.startsWith(`${o.server.child.pid}:`)) ?? orch1;
    killedAt = Date.now();
    victim.server.child.kill('SIGKILL');
    await victim.server.exited;
    diedAt = Date.now();
    runningAtKill = (
      await client.query(
        `select id, kind, order_id, user_id, lease_until from orchestrator.sagas where status = 'RUNNING'`,
      )
    ).rows;
  })();

  const started = Date.now();
  const hoarding = Promise.all(hoarders.map(hoard));
  const ends = await Promise.all(buyers.map(shop));
  saleOver = true;
  const saleEnded = Date.now();
  await Promise.all([hoarding, killer]);
  t.truthy(victim);
  const survivor = orchestrators.find((o) => o !== victim) as Instance;
  const ending = countBy(ends);
  const reserves = sent.filter((s) => s.route === 'reserve');
  const pays = sent.filter((s) => s.route === 'pay');
  t.log(
    `setup ${setupMs} ms; sale ${saleEnded - started} ms, ${bought.size}/${e.totalSeats} seats paid with a 200; ` +
      `reserve ${JSON.stringify(tally(reserves.map((s) => s.res)))}, pay ${JSON.stringify(tally(pays.map((s) => s.res)))}, ` +
      `${sent.filter((s) => s.route === 'map').length} seat-map reads; buyers ${JSON.stringify(ending)}`,
  );

  // Every saga ends (the dead instance's by the survivor's recovery), and every hold has run out.
  const sagas = await settledSagas(reader, { timeoutMs: 30_000 });
  const settledAt = Date.now();
  t.deepEqual(
    sagas.filter((s) => s.status === 'RUNNING').map((s) => `${s.kind} ${s.step}`),
    [],
    'no saga is left running',
  );
  const lastHold = Math.max(
    0,
    ...sent
      .filter((s) => s.route === 'reserve' && s.res.status === 200)
      .map((s) => Date.parse(s.res.body.data.held_until)),
  );
  // A hold a recovered reserve took (its answer never came) ends within a TTL of the kill.
  await sleep(Math.max(0, Math.max(lastHold, killedAt + HOLD_TTL_SECONDS * 1000) + 1000 - Date.now()));
  const snap = await snapshot(reader);
  // Should a seat be sold to an order that is not CONFIRMED (a confirm of the seat that lands after
  // its pay saga gave up on it and refunded), what the saga log and the ledger say of that order.
  for (const seat of snap.seats.filter((x) => x.status === 'SOLD')) {
    const o = snap.orders.find((x) => x.id === seat.sold_order_id);
    if (o?.status === 'CONFIRMED') continue;
    t.log(
      `seat ${seat.id} SOLD to order ${seat.sold_order_id} (${o?.status}): sagas ` +
        JSON.stringify(
          snap.sagas.filter((x) => x.order_id === seat.sold_order_id).map((x) => `${x.kind} ${x.step} ${x.status}`),
        ) +
        `, ledger ${JSON.stringify(snap.ledger.filter((x) => x.reference_id === seat.sold_order_id).map((x) => x.type))}` +
        `, pays ${JSON.stringify(sent.filter((x) => x.orderId === seat.sold_order_id).map((x) => outcome(x.res)))}`,
    );
  }
  checkInvariants(t, snap, { granted, sweepGraceMs: 1000 });

  const soldSeats = snap.seats.filter((s) => s.status === 'SOLD');
  const recoveredLines = instances.flatMap((i) =>
    logOf(i)
      .filter((l) => l.msg === 'saga recovered')
      .map((l) => ({ ...l, by: i })),
  );

  // The sale.
  t.deepEqual(unexpected.slice(0, 5), [], `${unexpected.length} unexpected answers`);
  t.deepEqual(
    ends.filter((end) => end !== 'sold out' && end !== 'credits gone'),
    [],
    'every buyer stopped because the event sold out or their credits were gone',
  );
  t.true(soldSeats.length > KILL_AT * e.totalSeats, 'the sale went on after the kill');
  t.deepEqual(
    [...new Set(snap.seats.map((s) => s.status))].filter((s) => s !== 'SOLD' && s !== 'AVAILABLE'),
    [],
    'every seat ended SOLD or AVAILABLE: every hold was paid for, released or ran out',
  );
  const orderById = new Map(snap.orders.map((o) => [o.id, o]));
  const seatsOf = (orderId: string) =>
    snap.orderSeats
      .filter((os) => os.order_id === orderId)
      .map((os) => os.seat_id)
      .sort();
  // What the buyers were told is what the databases say; a pay answered 5xx went either way.
  for (const [seat, b] of bought) {
    t.like(
      snap.seats.find((s) => s.id === seat),
      { status: 'SOLD', sold_order_id: b.orderId, owner_user_id: b.userId },
      `seat ${seat}, paid with a 200`,
    );
  }
  const confirmed = snap.orders.filter((o) => o.status === 'CONFIRMED');
  const paidOk = new Set([...bought.values()].map((b) => b.orderId));
  t.deepEqual(
    confirmed.filter((o) => !paidOk.has(o.id) && !unknownPays.has(o.id)).map((o) => o.id),
    [],
    'every CONFIRMED order was paid with a 200, or its pay answered 5xx (cut short by the kill)',
  );
  t.deepEqual(
    [...refusedPays].filter((id) => orderById.get(id)?.status === 'CONFIRMED'),
    [],
    'no refused pay confirmed its order',
  );
  // Every sold seat has one paid order: one PURCHASE of its total and no refund; any other order nets zero.
  const ledgerProblems: string[] = [];
  for (const o of snap.orders) {
    const rows = snap.ledger.filter((l) => l.reference_id === o.id);
    const kinds = rows.map((l) => l.type).sort();
    const net = rows.reduce((a, l) => a + l.amount, 0);
    if (o.status === 'CONFIRMED' && (kinds.join() !== 'PURCHASE' || net !== -o.total)) {
      ledgerProblems.push(`CONFIRMED ${o.id}: ${kinds.join()} net ${net}, total ${o.total}`);
    }
    if (o.status !== 'CONFIRMED' && (net !== 0 || !['', 'PURCHASE,REFUND'].includes(kinds.join()))) {
      ledgerProblems.push(`${o.status} ${o.id}: ${kinds.join()} net ${net}`);
    }
  }
  t.deepEqual(ledgerProblems, [], 'the ledger charges each CONFIRMED order once and nets every other to zero');
  t.is(
    new Set(soldSeats.map((s) => s.sold_order_id)).size,
    confirmed.length,
    'the SOLD seats belong to exactly the CONFIRMED orders',
  );

  // The hoarders: held up to the limit, never more; their holds ran out and were swept; their late pays were refused.
  const hoarded = [...hoards.values()].flat();
  t.true(limitRefusals >= HOARDERS, `the hoarders met the hold limit (${limitRefusals} refusals)`);
  t.deepEqual(limitBreaches, [], `no user held more than ${MAX_HELD_SEATS_PER_USER} live seats`);
  t.true(hoarded.length >= 2 * HOARDERS, `${hoarded.length} hoarded orders`);
  t.deepEqual(
    hoarded.map((o) => orderById.get(o.orderId)?.status).filter((s) => s !== 'EXPIRED' && s !== 'FAILED'),
    [],
    "every hoarder's order ended EXPIRED (or FAILED, released by recovery)",
  );
  t.deepEqual(
    hoarded.filter((o) => seatsOf(o.orderId).join() !== [...o.seats].sort().join()).map((o) => o.orderId),
    [],
    'each hoarded order is the seats its reserve named',
  );
  t.deepEqual(
    latePays.filter((p) => !fromEdge(p)).map((p) => outcome(p.res)),
    latePays.filter((p) => !fromEdge(p)).map(() => '410 HOLD_EXPIRED'),
    'a pay after its hold ran out is refused',
  );
  const expired = await Promise.all(
    [event1, event2].map(async (i) => {
      const text = await (await fetch(`${i.url}/metrics`)).text();
      return Number(/^event_holds_expired_total (\d+)/m.exec(text)?.[1] ?? 0);
    }),
  );
  t.true(expired[0] + expired[1] >= hoarded.length, `holds swept: ${expired.join(' + ')}`);

  // Both instances of each hot slice served: the edge shared the requests out. Which instance served
  // a request is the one whose request line carries its correlation id.
  const servedBy = new Map<string, Instance[]>();
  for (const i of [...orchestrators, event1, event2]) {
    for (const l of logOf(i)) {
      if (l.msg !== 'request' || !l.path?.startsWith('/api/') || !l.correlation_id) continue;
      servedBy.set(l.correlation_id, [...(servedBy.get(l.correlation_id) ?? []), i]);
    }
  }
  const by = (s: Sent) => servedBy.get(s.correlationId) ?? [];
  const calls = sent.filter((s) => s.route !== 'map');
  const maps = sent.filter((s) => s.route === 'map');
  const internal = (i: Instance, from = 0) =>
    logOf(i).filter(
      (l) => l.msg === 'request' && l.path?.startsWith('/internal/') && l.at - (l.duration_ms ?? 0) >= from,
    ).length;
  const share = (list: Sent[], of: Instance[]) =>
    Object.fromEntries(of.map((i) => [i.name, list.filter((s) => by(s).includes(i)).length]));
  const beforeKill = share(
    calls.filter((s) => s.answered < killedAt),
    orchestrators,
  );
  const afterKill = share(
    calls.filter((s) => s.sent > diedAt),
    orchestrators,
  );
  const mapShare = share(maps, [event1, event2]);
  t.log(
    `reserves and pays answered before the kill ${JSON.stringify(beforeKill)}, sent after it ${JSON.stringify(afterKill)}; ` +
      `seat maps ${JSON.stringify(mapShare)}; internal calls ${JSON.stringify(Object.fromEntries(instances.map((i) => [i.name, internal(i)])))}`,
  );
  t.deepEqual(
    sent.filter((s) => by(s).length > 1).map((s) => s.correlationId),
    [],
    'no request was served twice',
  );
  // The dead instance's last lines may not have reached its log: only earlier answers are looked up.
  t.deepEqual(
    sent.filter((s) => !fromEdge(s) && s.answered < killedAt - 1000 && by(s).length === 0).map((s) => s.correlationId),
    [],
    'every request answered before the kill was served by an instance',
  );
  for (const o of orchestrators) {
    const n = beforeKill[o.name];
    t.true(
      n > 0.25 * (beforeKill[orch1.name] + beforeKill[orch2.name]),
      `${o.name} served ${n} requests before the kill`,
    );
  }
  for (const i of [event1, event2]) {
    t.true(mapShare[i.name] > 0.25 * maps.length, `${i.name} served ${mapShare[i.name]} of ${maps.length} seat maps`);
    t.true(internal(i) > 0, `${i.name} served its orchestrator's calls`);
  }

  // The kill: only requests in flight at the dead instance failed; everything after went to the survivor.
  const edge503 = sent.filter(fromEdge);
  t.true(killedAt > started && killedAt < saleEnded, 'the kill came mid-sale');
  t.deepEqual(
    edge503
      .filter((s) => s.sent > diedAt || s.answered < killedAt || s.route === 'map' || by(s).includes(survivor))
      .map((s) => `${s.route} sent ${s.sent - killedAt} ms after the kill`),
    [],
    'the edge answered 503 only for orchestrator requests that the dead instance had when it died',
  );
  const after = calls.filter((s) => s.sent > diedAt);
  t.true(after.length > 0, 'the sale went on after the kill');
  t.deepEqual(
    after.filter((s) => by(s).length !== 1 || by(s)[0] !== survivor).map((s) => `${s.route} ${outcome(s.res)}`),
    [],
    'the survivor served every reserve and pay sent after the kill',
  );
  t.deepEqual(
    sent.filter((s) => s.sent > diedAt && s.res.status >= 500).map((s) => `${s.route} ${outcome(s.res)}`),
    [],
    'after the kill nothing answered 5xx',
  );
  t.is(
    internal(partner.get(victim as Instance) as Instance, diedAt),
    0,
    "the dead instance's event instance got no internal call after the kill: each orchestrator calls its own",
  );

  // Recovery: the survivor finished, once each, the sagas the dead instance left, once their leases had run out.
  const recovered = recoveredLines.filter((l) => l.at > killedAt);
  const atKill = new Map(runningAtKill.map((s) => [s.id, s]));
  const recoveryMs = Math.max(...recovered.map((l) => l.at)) - killedAt;
  t.log(
    `killed ${victim?.name} at ${killedAt - started} ms into the sale (gone ${diedAt - killedAt} ms later): ${runningAtKill.length} sagas running, ` +
      `${edge503.length} requests answered 503 by the edge, ${unknownPays.size} pays of unknown outcome ` +
      `(${[...unknownPays].filter((id) => orderById.get(id)?.status === 'CONFIRMED').length} confirmed by recovery); ` +
      `${recovered.length} sagas recovered by ${survivor.name}, the last ${recoveryMs} ms after the kill ` +
      `(${JSON.stringify(countBy(recovered.map((l) => l.kind as string)))}); ` +
      `settled ${settledAt - killedAt} ms after the kill; holds swept ${expired.join(' + ')}; ${Math.round(performance.now() - began)} ms since the start`,
  );
  t.true(recovered.length > 0, 'the dead instance left sagas, and recovery finished them');
  t.deepEqual(
    recovered.filter((l) => l.by !== survivor).map((l) => l.by.name),
    [],
    'the survivor recovered them',
  );
  t.is(new Set(recovered.map((l) => l.saga)).size, recovered.length, 'each saga was recovered once');
  t.deepEqual(
    recovered.filter((l) => !atKill.has(l.saga as string)).map((l) => l.saga),
    [],
    'only sagas running at the kill were recovered',
  );
  t.deepEqual(
    recovered
      .filter((l) => l.at < (atKill.get(l.saga as string)?.lease_until.getTime() ?? 0))
      .map((l) => `${l.saga} at ${l.time}`),
    [],
    "each was recovered only after its runner's lease had run out",
  );
  const cut = new Set(edge503.flatMap((s) => [s.orderId, s.userId]));
  t.deepEqual(
    recovered
      .map((l) => atKill.get(l.saga as string))
      .filter((s) => s && !cut.has(s.kind === 'pay' ? s.order_id : s.user_id))
      .map((s) => `${s?.kind} ${s?.id}`),
    [],
    'every recovered saga was a request whose answer the kill cut off',
  );
  t.true(recoveryMs < SAGA_LEASE_MS + JOB_LEASE_MS + 10_000, `recovery was done ${recoveryMs} ms after the kill`);

  // Leases: every change of holder came after the last holder's lease had run out.
  const audit = (await client.query('select * from public.lease_audit order by id')).rows as AuditRow[];
  const early = audit.filter(
    (r) =>
      r.op === 'UPDATE' &&
      r.old_holder !== r.new_holder &&
      (r.old_expires as Date).getTime() > (r.new_expires as Date).getTime() - JOB_LEASE_MS,
  );
  t.deepEqual(early, [], 'no lease was taken from a holder whose lease had not run out');
  const pidOf = (holder: string) => Number(holder.split(':')[0]);
  const byPid = new Map(instances.map((i) => [i.server.child.pid, i]));
  const recoveryRows = audit.filter((r) => r.schema === 'orchestrator' && r.name === 'saga-recovery');
  const spans = leaseSpans(recoveryRows, auditSince).map((s) => ({ ...s, by: byPid.get(pidOf(s.holder)) }));
  t.log(
    `saga-recovery lease: ${spans.map((s) => `${s.by?.name} ${s.from - started}..${s.until - started} ms`).join(', ')}; ` +
      `killed ${victim?.name} at ${killedAt - started} ms`,
  );
  const handover = spans.find((s) => s.by === survivor && s.from > killedAt);
  t.truthy(handover, 'the survivor took the saga-recovery lease after the kill');
  const victimLast = Math.max(0, ...spans.filter((s) => s.by === victim).map((s) => s.until));
  t.true(victimLast > killedAt, 'the dead instance held the recovery lease when it died');
  t.true((handover?.from ?? 0) >= victimLast, "the survivor took it once the dead instance's lease had run out");
  const ticks = orchestrators.flatMap((o) =>
    logOf(o)
      .filter((l) => l.msg === 'job ran' && l.job === 'saga-recovery' && l.at > auditSince + 50)
      .map((l) => ({ by: o, holder: l.holder as string, start: l.at - (l.duration_ms ?? 0) })),
  );
  t.true(
    orchestrators.every((o) => ticks.some((k) => k.by === o)),
    'saga recovery ran on both instances (one after the other)',
  );
  t.deepEqual(
    ticks
      .filter((k) => !spans.some((s) => s.holder === k.holder && k.start >= s.from - 5 && k.start <= s.until))
      .map((k) => `${k.by.name} at ${k.start - started} ms`),
    [],
    'every recovery tick ran while its instance held the lease',
  );
  const sweeps = [event1, event2].map((i) => logOf(i).filter((l) => l.msg === 'job ran' && l.job === 'hold-sweeper'));
  t.true(
    sweeps.every((s) => s.some((l) => l.at > started && l.at < saleEnded)),
    'the hold sweepers ran on both event instances during the sale (they take no lease)',
  );
}

const title =
  'several instances behind deploy/nginx.conf: a flash sale through two orchestrators and two event slices, one killed mid-sale';
if (!PG_URL) test.skip(`${title} — skipped: no PostgreSQL (set DATABASE_URL or TEST_DATABASE_URL)`, () => {});
// .ci/run installs it; a bare Node.js machine may lack it.
else if (!NGINX) test.skip(`${title} — skipped: nginx is missing (apt-get install nginx-light)`, () => {});
else test(title, scaledSale);
