/**
 * The flash sale's baseline: a bare Koa server that sells seats in raw SQL on one database, with
 * no auth, no ORM, no sagas, no middleware: what one Node.js process and the database allow for a
 * reserve-then-pay purchase, so that the real server's sale can be given as a share of it.
 * `npm run bench` starts it as a child process (`node --import tsx bench/sale-baseline.ts`) with
 *
 *   BASELINE_PORT   port to listen on (127.0.0.1)
 *   DATABASE_URL    postgres://… for PostgreSQL (its own schema "baseline"), else
 *   DATA_DIR        the directory for its own baseline.sqlite
 *
 * Routes (answers in the API's envelope):
 *   POST /setup   {seats, buyers, balance}  → fresh tables: `seats` seats (prices as the bench's
 *                 events: CAT1 188, CAT2 128, CAT3 68 credits, by row), `buyers` users with
 *                 `balance` cents each → {seat_ids, user_ids}
 *   POST /reserve {seat_ids, user_id}       → one transaction: a conditional hold UPDATE of all the
 *                 seats (all or none) and the order row with its seats → {order_id, seat_ids, total}
 *   POST /pay     {order_id}                → one transaction: the order PENDING → CONFIRMED, the
 *                 user's balance debited conditionally, the seats HELD → SOLD conditionally
 *                 → {order_id, status, credits_charged, remaining_balance}
 * Refusals: 404 (no such seat or order), 409 (a seat not available, an order not pending or its
 * seats no longer held), 402 (balance too low), 410 (the hold ran out), 400 (bad body).
 */
import type { IncomingMessage } from 'node:http';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import Koa from 'koa';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { BACKSTOP_AUTOCHECKPOINT_PAGES, startCheckpointer } from '../src/kernel/checkpoint.js';
import { answerError, inTransaction, listen, Refusal, readBody } from './lib/bare.js';

const HOLD_TTL_MS = 300_000;
const MAX_SEATS = 10;

interface Held {
  orderId: string;
  total: number;
}
interface Paid {
  charged: number;
  balance: number;
}
interface Sale {
  setup(seats: number, buyers: number, balance: number): Promise<{ seatIds: string[]; userIds: string[] }>;
  reserve(seatIds: string[], userId: string, now: number): Promise<Held>;
  pay(orderId: string, now: number): Promise<Paid>;
  close(): Promise<void>;
}

const notHeld = () => new Refusal(409, 'SEAT_UNAVAILABLE', 'A seat of the request is not available.');
const noOrder = () => new Refusal(404, 'ORDER_NOT_FOUND', 'No such order.');

/** The bench's price tiers in cents: the front fifth CAT1, the next third CAT2, the rest CAT3 (100 seats a row). */
function prices(seats: number): number[] {
  const rows = Math.ceil(seats / 100);
  return Array.from({ length: seats }, (_, i) => {
    const row = Math.floor(i / 100);
    return row < rows / 5 ? 18_800 : row < rows * (1 / 5 + 1 / 3) ? 12_800 : 6_800;
  });
}

/** Why the hold of these seats failed, from the seats as they are now. */
function holdRefusal(found: number, asked: number): Refusal {
  if (found < asked) return new Refusal(404, 'SEAT_NOT_FOUND', 'No such seat.');
  return notHeld();
}

/** Why a pending-order update found nothing: no order, or one that is not pending any more. */
const orderRefusal = (status: string | undefined) =>
  status === undefined
    ? noOrder()
    : status === 'CONFIRMED'
      ? new Refusal(409, 'ORDER_ALREADY_CONFIRMED', 'This order is already paid.')
      : new Refusal(409, 'SEAT_NOT_HELD', 'This order is not pending.');

function sqlite(): Sale {
  const file = join(resolve(process.env.DATA_DIR || './data'), 'baseline.sqlite');
  const db = new Database(file);
  // The kernel's pragmas and its checkpointer beside the connection (src/kernel/persistence.ts).
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
  const checkpointer = startCheckpointer(file);
  type Stmt = ReturnType<typeof db.prepare>;
  let q: Record<'order' | 'debit' | 'sell' | 'orderStatus' | 'insertOrder' | 'insertOrderSeat', Stmt> | undefined;
  const holds = new Map<number, { hold: Stmt; count: Stmt }>();
  const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

  function prepare() {
    q = {
      order: db.prepare(`update orders set status = 'CONFIRMED', confirmed_at = ?
        where id = ? and status = 'PENDING' returning user_id, total, n_seats`),
      debit: db.prepare('update users set balance = balance - ? where id = ? and balance >= ? returning balance'),
      sell: db.prepare(`update seats set status = 'SOLD', owner_user_id = ?, sold_order_id = ?, price_paid = price,
          held_by_user_id = null, hold_order_id = null, held_until = null, updated_at = ?
        where id in (select seat_id from order_seats where order_id = ?)
          and status = 'HELD' and hold_order_id = ? and held_by_user_id = ? and held_until > ? returning id`),
      orderStatus: db.prepare('select status from orders where id = ?'),
      insertOrder: db.prepare(`insert into orders (id, user_id, status, total, n_seats, created_at, expires_at)
        values (?, ?, 'PENDING', ?, ?, ?, ?)`),
      insertOrderSeat: db.prepare('insert into order_seats (order_id, seat_id, position) values (?, ?, ?)'),
    };
    holds.clear();
  }
  /** The hold statement for n seats, prepared once per n. */
  function holdOf(n: number) {
    let s = holds.get(n);
    if (!s) {
      s = {
        hold: db.prepare(`update seats set status = 'HELD', held_by_user_id = ?, hold_order_id = ?, held_until = ?, updated_at = ?
          where id in (${placeholders(n)}) and (status = 'AVAILABLE' or (status = 'HELD' and held_until <= ?))
          returning id, price`),
        count: db.prepare(`select count(*) as n from seats where id in (${placeholders(n)})`),
      };
      holds.set(n, s);
    }
    return s;
  }

  const reserve = db.transaction((seatIds: string[], userId: string, now: number): Held => {
    const { hold, count } = holdOf(seatIds.length);
    const orderId = uuidv7();
    const rows = hold.all(userId, orderId, now + HOLD_TTL_MS, now, ...seatIds, now) as { price: number }[];
    if (rows.length < seatIds.length) {
      throw holdRefusal((count.get(...seatIds) as { n: number }).n, seatIds.length);
    }
    const total = rows.reduce((sum, r) => sum + r.price, 0);
    q?.insertOrder.run(orderId, userId, total, seatIds.length, now, now + HOLD_TTL_MS);
    for (const [i, id] of seatIds.entries()) q?.insertOrderSeat.run(orderId, id, i);
    return { orderId, total };
  });

  const pay = db.transaction((orderId: string, now: number): Paid => {
    if (!q) throw new Refusal(409, 'NOT_SET_UP', 'POST /setup first.');
    const [order] = q.order.all(now, orderId) as { user_id: string; total: number; n_seats: number }[];
    if (!order) throw orderRefusal((q.orderStatus.get(orderId) as { status: string } | undefined)?.status);
    const [debited] = q.debit.all(order.total, order.user_id, order.total) as { balance: number }[];
    if (!debited) throw new Refusal(402, 'INSUFFICIENT_CREDITS', 'Not enough credits.');
    const sold = q.sell.all(order.user_id, orderId, now, orderId, orderId, order.user_id, now);
    if (sold.length !== order.n_seats) throw new Refusal(410, 'HOLD_EXPIRED', 'The hold on these seats ran out.');
    return { charged: order.total, balance: debited.balance };
  });

  const setup = db.transaction((seats: number, buyers: number, balance: number) => {
    db.exec(`drop table if exists order_seats; drop table if exists orders; drop table if exists seats;
      drop table if exists users;
      create table users (id text not null primary key, balance integer not null check (balance >= 0));
      create table seats (id text not null primary key, status text not null, price integer not null,
        owner_user_id text, held_by_user_id text, hold_order_id text, held_until integer, sold_order_id text,
        price_paid integer, updated_at integer not null);
      create table orders (id text not null primary key, user_id text not null, status text not null,
        total integer not null, n_seats integer not null, created_at integer not null, expires_at integer not null,
        confirmed_at integer);
      create table order_seats (order_id text not null, seat_id text not null, position integer not null,
        primary key (order_id, seat_id));
      create index order_seats_seat_idx on order_seats (seat_id);`);
    const now = Date.now();
    const seatIds = Array.from({ length: seats }, () => uuidv7());
    const userIds = Array.from({ length: buyers }, () => uuidv7());
    const seat = db.prepare(`insert into seats (id, status, price, updated_at) values (?, 'AVAILABLE', ?, ?)`);
    const price = prices(seats);
    for (const [i, id] of seatIds.entries()) seat.run(id, price[i], now);
    const user = db.prepare('insert into users (id, balance) values (?, ?)');
    for (const id of userIds) user.run(id, balance);
    return { seatIds, userIds };
  });

  return {
    async setup(seats, buyers, balance) {
      const ids = setup(seats, buyers, balance);
      prepare();
      db.pragma('wal_checkpoint(TRUNCATE)');
      return ids;
    },
    async reserve(seatIds, userId, now) {
      if (!q) throw new Refusal(409, 'NOT_SET_UP', 'POST /setup first.');
      return reserve(seatIds, userId, now);
    },
    pay: async (orderId, now) => pay(orderId, now),
    async close() {
      await checkpointer.stop();
      db.close();
    },
  };
}

function postgres(url: string): Sale {
  // As the kernel's connections (src/kernel/persistence.ts): prepared statements planned once.
  const pool = new pg.Pool({ connectionString: url, max: 10, options: '-c plan_cache_mode=force_generic_plan' });
  const S = 'baseline';
  // Named statements: each connection parses and plans them once, as prepared statements on SQLite.
  // The hold and the sale lock their seats in id order first, so that two transactions over
  // overlapping seats never deadlock (they did, now and then, in the 1–4 seat sale without it).
  const HOLD = {
    name: 'sale_hold',
    text: `with locked as (select id from ${S}.seats where id = any($1::uuid[]) order by id for update)
      update ${S}.seats s set status = 'HELD', held_by_user_id = $2, hold_order_id = $3, held_until = $4, updated_at = $5
      from locked where s.id = locked.id and (s.status = 'AVAILABLE' or (s.status = 'HELD' and s.held_until <= $5))
      returning s.id, s.price`,
  };
  const COUNT = { name: 'sale_count', text: `select count(*)::int as n from ${S}.seats where id = any($1::uuid[])` };
  const INSERT_ORDER = {
    name: 'sale_insert_order',
    text: `with o as (insert into ${S}.orders (id, user_id, status, total, n_seats, created_at, expires_at)
        values ($1, $2, 'PENDING', $3, $4, $5, $6))
      insert into ${S}.order_seats (order_id, seat_id, position)
        select $1, seat_id, position - 1 from unnest($7::uuid[]) with ordinality as u(seat_id, position)`,
  };
  const ORDER = {
    name: 'sale_order',
    text: `update ${S}.orders set status = 'CONFIRMED', confirmed_at = $2 where id = $1 and status = 'PENDING'
      returning user_id, total, n_seats`,
  };
  const ORDER_STATUS = { name: 'sale_order_status', text: `select status from ${S}.orders where id = $1` };
  const DEBIT = {
    name: 'sale_debit',
    text: `update ${S}.users set balance = balance - $1 where id = $2 and balance >= $1 returning balance`,
  };
  const SELL = {
    name: 'sale_sell',
    text: `with locked as (select id from ${S}.seats
          where id in (select seat_id from ${S}.order_seats where order_id = $1) order by id for update)
      update ${S}.seats s set status = 'SOLD', owner_user_id = $2, sold_order_id = $1, price_paid = price,
        held_by_user_id = null, hold_order_id = null, held_until = null, updated_at = $3
      from locked where s.id = locked.id
        and s.status = 'HELD' and s.hold_order_id = $1 and s.held_by_user_id = $2 and s.held_until > $3 returning s.id`,
  };

  /** One transaction on one pooled connection; a refusal rolls it back. */
  const tx = <T>(fn: (c: pg.PoolClient) => Promise<T>) => inTransaction(pool, fn);

  return {
    async setup(seats, buyers, balance) {
      const seatIds = Array.from({ length: seats }, () => uuidv7());
      const userIds = Array.from({ length: buyers }, () => uuidv7());
      await tx(async (c) => {
        await c.query(`drop schema if exists ${S} cascade; create schema ${S};
          create table ${S}.users (id uuid primary key, balance bigint not null check (balance >= 0));
          create table ${S}.seats (id uuid primary key, status varchar(12) not null, price integer not null,
            owner_user_id uuid, held_by_user_id uuid, hold_order_id uuid, held_until timestamptz, sold_order_id uuid,
            price_paid integer, updated_at timestamptz not null);
          create table ${S}.orders (id uuid primary key, user_id uuid not null, status varchar(12) not null,
            total integer not null, n_seats integer not null, created_at timestamptz not null,
            expires_at timestamptz not null, confirmed_at timestamptz);
          create table ${S}.order_seats (order_id uuid not null, seat_id uuid not null, position integer not null,
            primary key (order_id, seat_id));
          create index order_seats_seat_idx on ${S}.order_seats (seat_id);`);
        await c.query(
          `insert into ${S}.seats (id, status, price, updated_at)
            select id, 'AVAILABLE', price, now() from unnest($1::uuid[], $2::int[]) as u(id, price)`,
          [seatIds, prices(seats)],
        );
        await c.query(`insert into ${S}.users (id, balance) select id, $2 from unnest($1::uuid[]) as u(id)`, [
          userIds,
          balance,
        ]);
      });
      await pool.query(`analyze ${S}.seats; analyze ${S}.users`);
      return { seatIds, userIds };
    },
    reserve: (seatIds, userId, now) =>
      tx(async (c) => {
        const orderId = uuidv7();
        const until = new Date(now + HOLD_TTL_MS);
        const { rows } = await c.query<{ price: number }>({
          ...HOLD,
          values: [seatIds, userId, orderId, until, new Date(now)],
        });
        if (rows.length < seatIds.length) {
          const { rows: found } = await c.query<{ n: number }>({ ...COUNT, values: [seatIds] });
          throw holdRefusal(found[0].n, seatIds.length);
        }
        const total = rows.reduce((sum, r) => sum + Number(r.price), 0);
        await c.query({
          ...INSERT_ORDER,
          values: [orderId, userId, total, seatIds.length, new Date(now), until, seatIds],
        });
        return { orderId, total };
      }),
    pay: (orderId, now) =>
      tx(async (c) => {
        const t = new Date(now);
        const { rows } = await c.query<{ user_id: string; total: number; n_seats: number }>({
          ...ORDER,
          values: [orderId, t],
        });
        const [order] = rows;
        if (!order) {
          const { rows: found } = await c.query<{ status: string }>({ ...ORDER_STATUS, values: [orderId] });
          throw orderRefusal(found[0]?.status);
        }
        const { rows: debited } = await c.query<{ balance: string }>({
          ...DEBIT,
          values: [order.total, order.user_id],
        });
        if (!debited[0]) throw new Refusal(402, 'INSUFFICIENT_CREDITS', 'Not enough credits.');
        const sold = await c.query({ ...SELL, values: [orderId, order.user_id, t] });
        if (sold.rowCount !== order.n_seats) {
          throw new Refusal(410, 'HOLD_EXPIRED', 'The hold on these seats ran out.');
        }
        return { charged: order.total, balance: Number(debited[0].balance) };
      }),
    close: () => pool.end(),
  };
}

const port = Number(process.env.BASELINE_PORT || 0);
const pgUrl = process.env.DATABASE_URL || '';
const sale = pgUrl ? postgres(pgUrl) : sqlite();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const isId = (v: unknown): v is string => typeof v === 'string' && UUID.test(v);
const credits = (cents: number) => cents / 100;

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  try {
    const parsed = JSON.parse(await readBody(req));
    if (parsed && typeof parsed === 'object') return parsed;
  } catch {}
  throw new Refusal(400, 'VALIDATION_ERROR', 'The request body is not a JSON object.');
}

const routes: Record<string, (args: Record<string, unknown>) => Promise<unknown>> = {
  async '/setup'({ seats, buyers, balance }) {
    const ok = (n: unknown, max: number) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= max;
    if (!ok(seats, 1_000_000) || !ok(buyers, 100_000) || !ok(balance, 2_000_000_000)) {
      throw new Refusal(400, 'VALIDATION_ERROR', 'seats, buyers and balance (cents) are positive integers.');
    }
    const { seatIds, userIds } = await sale.setup(seats as number, buyers as number, balance as number);
    return { seat_ids: seatIds, user_ids: userIds };
  },
  async '/reserve'({ seat_ids: seatIds, user_id: userId }) {
    if (
      !Array.isArray(seatIds) ||
      seatIds.length < 1 ||
      seatIds.length > MAX_SEATS ||
      !seatIds.every(isId) ||
      new Set(seatIds).size !== seatIds.length ||
      !isId(userId)
    ) {
      throw new Refusal(400, 'VALIDATION_ERROR', `seat_ids: 1 to ${MAX_SEATS} distinct UUIDs; user_id: a UUID.`);
    }
    const held = await sale.reserve(seatIds, userId, Date.now());
    return { order_id: held.orderId, seat_ids: seatIds, status: 'HELD', price: credits(held.total) };
  },
  async '/pay'({ order_id: orderId }) {
    if (!isId(orderId)) throw new Refusal(400, 'VALIDATION_ERROR', 'order_id: a UUID.');
    const paid = await sale.pay(orderId, Date.now());
    return {
      order_id: orderId,
      status: 'CONFIRMED',
      credits_charged: credits(paid.charged),
      remaining_balance: credits(paid.balance),
    };
  },
};

const app = new Koa();
app.silent = true;
app.use(async (ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/health') {
    ctx.body = { status: 'healthy' };
    return;
  }
  const route = ctx.method === 'POST' ? routes[ctx.path] : undefined;
  if (!route) {
    ctx.status = 404;
    ctx.body = { success: false, error_code: 'NOT_FOUND', message: 'No such route.' };
    return;
  }
  try {
    ctx.body = { success: true, data: await route(await body(ctx.req)) };
  } catch (err) {
    answerError(ctx, err);
  }
});

const server = listen(app, port, `sale baseline (${pgUrl ? 'postgresql' : 'sqlite'})`);
server.keepAliveTimeout = 5_000;

const stop = () => {
  server.close(() => {
    sale.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
  server.closeIdleConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
