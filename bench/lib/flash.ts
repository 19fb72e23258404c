import http from 'node:http';
import type { BenchDb } from './databases.js';

/** A buyer of the flash sale: the real server needs its token, the baseline only its id. */
export interface Buyer {
  userId: string;
  token?: string;
}

/** How to buy from one server: the real one (`/api/reserve`, `/api/pay`, a bearer token) or the baseline. */
export interface SaleTarget {
  base: string;
  reservePath: string;
  payPath: string;
  headers(buyer: Buyer): Record<string, string>;
  reserveBody(buyer: Buyer, seatIds: string[]): unknown;
}

export interface SaleOptions {
  seatIds: readonly string[];
  buyers: readonly Buyer[];
  /** Keep-alive sockets the buyers share (the agent's maxSockets). */
  connections: number;
  /** Seats per order, drawn uniformly from [min, max] (fewer when fewer are left). */
  seatsPerOrder: [number, number];
  /** The sale is given up after this long (ms) without a seat held, or when this many requests failed outright. */
  stallMs?: number;
  maxErrors?: number;
  /** Ends the sale early: each buyer finishes the order it is at (its pay included) and stops. */
  signal?: AbortSignal;
  /** Called on every answer (a warm-up counts them). */
  onAnswer?: () => void;
}

export interface Latency {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface SaleResult {
  elapsedS: number;
  /** Seats whose pay answered 2xx. */
  seatsSold: number;
  seatsPerSec: number;
  requests: number;
  reqPerSec: number;
  ok2xx: number;
  c4xx: number;
  c5xx: number;
  /** Requests without an answer: socket errors and timeouts. */
  errors: number;
  statuses: Record<string, Record<string, number>>;
  reservesOk: number;
  /** Pays that did not answer 2xx after a reserve that did: their seats stay held. */
  paysFailed: number;
  latency: { all: Latency; reserve: Latency; pay: Latency };
  /** Why the sale ended before every seat was held: a stall or too many errors; null when sold out. */
  stopped: string | null;
  /** Ended by the caller's signal before it sold out (not counted as `stopped`). */
  aborted: boolean;
  /** Seats never held by a reserve that answered 2xx. */
  neverHeld: number;
}

/**
 * The seats a buyer can still try, as a client that sees the seat map would: every seat not yet
 * taken by a reserve that answered 2xx. Buyers draw at random from it, so two in flight can draw
 * the same seat (the contention the all-or-none hold must settle), and more often as it empties.
 */
class Candidates {
  private readonly ids: string[];
  private readonly at = new Map<string, number>();

  constructor(ids: readonly string[]) {
    this.ids = [...ids];
    for (const [i, id] of this.ids.entries()) this.at.set(id, i);
  }

  get size() {
    return this.ids.length;
  }

  /** k distinct seats at random (k ≤ size). */
  draw(k: number): string[] {
    const out = new Set<string>();
    while (out.size < k) out.add(this.ids[Math.floor(Math.random() * this.ids.length)]);
    return [...out];
  }

  remove(id: string) {
    const i = this.at.get(id);
    if (i === undefined) return;
    const last = this.ids.pop() as string;
    this.at.delete(id);
    if (last !== id) {
      this.ids[i] = last;
      this.at.set(last, i);
    }
  }
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

export function latency(ms: number[]): Latency {
  const sorted = [...ms].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    count: sorted.length,
    p50Ms: round(percentile(sorted, 0.5)),
    p99Ms: round(percentile(sorted, 0.99)),
    maxMs: round(sorted.at(-1) ?? 0),
  };
}

interface Answer {
  status: number;
  body: { data?: { order_id?: string } } | undefined;
}

/**
 * One POST over the shared keep-alive agent. The latency runs from the moment the request has a
 * socket to the end of the answer: what the server takes, not the wait of a buyer whose turn for
 * one of the `connections` sockets has not come (100 buyers share 50).
 */
function post(
  agent: http.Agent,
  url: URL,
  path: string,
  headers: Record<string, string>,
  body: unknown,
  latencies: number[],
): Promise<Answer> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    let started = 0;
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path,
        method: 'POST',
        agent,
        timeout: 30_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          latencies.push(performance.now() - started);
          let parsed: Answer['body'];
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {}
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.once('socket', () => {
      started = performance.now();
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * The flash sale: every buyer is an async loop that reserves seats it draws from those not yet
 * taken, then pays for its order, and again, until no seat is left (or `signal` ends it). All loops share one agent of
 * `connections` keep-alive sockets. Counts each answer by request kind and status class.
 */
export async function flashSale(target: SaleTarget, options: SaleOptions): Promise<SaleResult> {
  const { connections, seatsPerOrder } = options;
  const stallMs = options.stallMs ?? 10_000;
  const maxErrors = options.maxErrors ?? 100;
  const url = new URL(target.base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const candidates = new Candidates(options.seatIds);
  const statuses: SaleResult['statuses'] = { reserve: {}, pay: {} };
  const times = { reserve: [] as number[], pay: [] as number[] };
  let errors = 0;
  let seatsSold = 0;
  let reservesOk = 0;
  let paysFailed = 0;
  let lastHeld = performance.now();
  let stopped: string | null = null;

  const send = async (kind: 'reserve' | 'pay', path: string, buyer: Buyer, body: unknown) => {
    try {
      const answer = await post(agent, url, path, target.headers(buyer), body, times[kind]);
      const bucket = statuses[kind];
      bucket[answer.status] = (bucket[answer.status] ?? 0) + 1;
      options.onAnswer?.();
      return answer;
    } catch {
      if (++errors >= maxErrors) stopped ??= `${errors} requests failed without an answer`;
      return undefined;
    }
  };

  const [min, max] = seatsPerOrder;
  const buyer = async (b: Buyer) => {
    while (!stopped && !options.signal?.aborted && candidates.size > 0) {
      if (performance.now() - lastHeld > stallMs) {
        stopped ??= `no seat held for ${stallMs / 1000} s with ${candidates.size} left`;
        break;
      }
      const k = Math.min(candidates.size, min + Math.floor(Math.random() * (max - min + 1)));
      const seats = candidates.draw(k);
      const reserved = await send('reserve', target.reservePath, b, target.reserveBody(b, seats));
      if (!reserved || reserved.status < 200 || reserved.status >= 300) continue;
      for (const id of seats) candidates.remove(id);
      reservesOk++;
      lastHeld = performance.now();
      const orderId = reserved.body?.data?.order_id;
      const paid = orderId ? await send('pay', target.payPath, b, { order_id: orderId }) : undefined;
      if (paid && paid.status >= 200 && paid.status < 300) seatsSold += seats.length;
      else paysFailed++;
    }
  };

  const started = performance.now();
  try {
    await Promise.all(options.buyers.map(buyer));
  } finally {
    agent.destroy();
  }
  const elapsedS = (performance.now() - started) / 1000;

  const byClass = (lo: number) =>
    Object.values(statuses)
      .flatMap((bucket) => Object.entries(bucket))
      .filter(([code]) => Number(code) >= lo && Number(code) < lo + 100)
      .reduce((n, [, count]) => n + count, 0);
  const requests = times.reserve.length + times.pay.length;
  return {
    elapsedS,
    seatsSold,
    seatsPerSec: seatsSold / elapsedS,
    requests,
    reqPerSec: requests / elapsedS,
    ok2xx: byClass(200),
    c4xx: byClass(400),
    c5xx: byClass(500),
    errors,
    statuses,
    reservesOk,
    paysFailed,
    latency: {
      all: latency([...times.reserve, ...times.pay]),
      reserve: latency(times.reserve),
      pay: latency(times.pay),
    },
    stopped,
    aborted: !stopped && candidates.size > 0 && options.signal?.aborted === true,
    neverHeld: candidates.size,
  };
}

/** Where a sale's outcome is read from: the seats of the sale, and the seats of every CONFIRMED order. */
export interface SaleTables {
  /** Rows {id, status, owner_user_id, sold_order_id} of the sale's seats. */
  seats: { module: string; sql: string; params?: unknown[] };
  /** Rows {seat_id, order_id, user_id} of CONFIRMED orders (others' seats are ignored). */
  confirmed: { module: string; sql: string; params?: unknown[] };
}

export interface SaleCheck {
  seats: number;
  /** SOLD or CHECKED_IN in the database. */
  soldInDb: number;
  heldInDb: number;
  /**
   * Seats sold more than once or sold wrong: in more than one CONFIRMED order, or SOLD without
   * exactly one CONFIRMED order whose id is its sold_order_id and whose user is its owner, or in a
   * CONFIRMED order without being sold to it. Must be 0.
   */
  oversells: number;
  /** Up to ten of them, with what is wrong. */
  examples: string[];
}

/** The oversell check, from the database after the sale. */
export async function checkSale(db: BenchDb, tables: SaleTables): Promise<SaleCheck> {
  const seats = await db.select<{
    id: string;
    status: string;
    owner_user_id: string | null;
    sold_order_id: string | null;
  }>(tables.seats.module, tables.seats.sql, tables.seats.params);
  const confirmed = await db.select<{ seat_id: string; order_id: string; user_id: string }>(
    tables.confirmed.module,
    tables.confirmed.sql,
    tables.confirmed.params,
  );
  const ordersOf = new Map<string, { orderId: string; userId: string }[]>();
  for (const c of confirmed) {
    const list = ordersOf.get(c.seat_id) ?? [];
    list.push({ orderId: c.order_id, userId: c.user_id });
    ordersOf.set(c.seat_id, list);
  }
  const wrong: string[] = [];
  let soldInDb = 0;
  let heldInDb = 0;
  for (const s of seats) {
    const orders = ordersOf.get(s.id) ?? [];
    const sold = s.status === 'SOLD' || s.status === 'CHECKED_IN';
    if (sold) soldInDb++;
    if (s.status === 'HELD') heldInDb++;
    if (orders.length > 1) wrong.push(`${s.id}: in ${orders.length} CONFIRMED orders`);
    else if (sold && orders.length === 0) wrong.push(`${s.id}: ${s.status} without a CONFIRMED order`);
    else if (!sold && orders.length === 1)
      wrong.push(`${s.id}: in CONFIRMED order ${orders[0].orderId} but ${s.status}`);
    else if (sold && (orders[0].orderId !== s.sold_order_id || orders[0].userId !== s.owner_user_id)) {
      wrong.push(`${s.id}: sold_order_id/owner do not match its CONFIRMED order ${orders[0].orderId}`);
    }
  }
  return { seats: seats.length, soldInDb, heldInDb, oversells: wrong.length, examples: wrong.slice(0, 10) };
}
