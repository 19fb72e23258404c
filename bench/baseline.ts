/**
 * The benchmark's baseline: a bare Koa server with one route, `POST /internal/event/holdSeats`,
 * that runs the hold as the event module does, in the same raw SQL on the same database, and
 * nothing else: no middleware stack, no ORM, no koa-body, no joi. `npm run bench` starts it as a
 * child process (`node --import tsx bench/baseline.ts`) with
 *
 *   BASELINE_PORT   port to listen on (127.0.0.1)
 *   SERVICE_TOKEN   the x-service-token it expects, as the real /internal routes do
 *   DATABASE_URL    postgres://… for PostgreSQL (schema "event"), else
 *   DATA_DIR        the directory holding event.sqlite
 *
 * It imports nothing from src/ but the SQLite checkpointer, on purpose: the statements below are
 * copied from src/modules/event/seats.ts (LOCK_USER, LOCK_SEATS, HOLD_ORDER, WHY_NOT_HELD and
 * HELD_BY_USER in createSeats, and the transaction of `holdOrder`: on PostgreSQL the user's lock, the
 * seats' locks when there are several, and the UPDATE in one transaction, on SQLite the UPDATE alone) and must be kept in sync by hand; the
 * connection is set up as src/kernel/persistence.ts sets up a module's. A refusal is explained
 * more simply than the module does (no repeated-reserve answer, no retry): the bench's holds are
 * of free seats.
 */
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import Koa from 'koa';
import pg from 'pg';
import { BACKSTOP_AUTOCHECKPOINT_PAGES, startCheckpointer } from '../src/kernel/checkpoint.js';
import { answerError, inTransaction, listen, Refusal, readBody } from './lib/bare.js';

type Status = 'AVAILABLE' | 'HELD' | 'SOLD' | 'CHECKED_IN';
interface HeldRow {
  id: string;
  event_id: string;
  row_number: string;
  seat_number: number;
  category: string;
  price: number | string;
}
interface WhyRow {
  id: string;
  status: Status;
  held_until: unknown;
  event_date: unknown;
}
type Binds = Record<string, unknown>;
interface Sql {
  /** Timestamps as the event module stores them: epoch ms on SQLite, timestamptz on PostgreSQL. */
  time(ms: number): number | Date;
  /** `:ids` as each dialect takes a list: a uuid[] on PostgreSQL, JSON text on SQLite. */
  ids(ids: string[]): unknown;
  hold(binds: Binds): Promise<HeldRow[]>;
  why(binds: Binds): Promise<WhyRow[]>;
  heldByUser(binds: Binds): Promise<number>;
  close(): Promise<void>;
}

const port = Number(process.env.BASELINE_PORT || 0);
const token = process.env.SERVICE_TOKEN || '';
const pgUrl = process.env.DATABASE_URL || '';

// --- Copied from src/modules/event/seats.ts (createSeats); `T.seats`/`T.events` are db.table(...). ---
type Tables = { seats: string; events: string; pg: boolean };
const inIds = (T: Tables, column: string) =>
  T.pg ? `${column} = any(:ids)` : `${column} in (select value from json_each(:ids))`;
const takeable = (p = '') => `(${p}status = 'AVAILABLE' or (${p}status = 'HELD' and ${p}held_until <= :now))`;
const lockUserSql = () => `select pg_advisory_xact_lock(hashtext('event.holds'), hashtext(:userId))`;
const lockSeatsSql = (T: Tables) => `select id from ${T.seats} where id = any(:ids) order by id for update`;
const holdOrderSql = (
  T: Tables,
) => `update ${T.seats} set status = 'HELD', held_by_user_id = :userId, hold_order_id = :orderId,
      held_until = :until, updated_at = :now
    where ${inIds(T, 'id')} and ${takeable()}
      and (select count(*) from ${T.seats} s join ${T.events} e on e.id = s.event_id
        where ${inIds(T, 's.id')} and ${takeable('s.')} and e.event_date > :now
        having count(distinct s.event_id) = 1) = :n
      and (select count(*) from ${T.seats}
        where held_by_user_id = :userId and status = 'HELD' and held_until > :now and hold_order_id <> :orderId) + :n <= :holdLimit
    returning id, event_id, row_number, seat_number, category, price`;
const heldByUserSql = (T: Tables) => `select count(*) as n from ${T.seats}
    where held_by_user_id = :userId and status = 'HELD' and held_until > :now and hold_order_id <> :orderId`;
const whyNotHeldSql = (T: Tables) => `select s.id, s.status, s.held_until, e.event_date
    from ${T.seats} s join ${T.events} e on e.id = s.event_id where ${inIds(T, 's.id')}`;
// --- end of the copy ---

/** `:name` binds to PostgreSQL's `$n` (one number per name), as knex does for the event module. */
function numbered(sql: string): { text: string; names: string[] } {
  const names: string[] = [];
  const text = sql.replace(/(?<!:):(\w+)/g, (_, name: string) => {
    if (!names.includes(name)) names.push(name);
    return `$${names.indexOf(name) + 1}`;
  });
  return { text, names };
}

function sqlite(): Sql {
  const file = join(resolve(process.env.DATA_DIR || './data'), 'event.sqlite');
  const db = new Database(file, { fileMustExist: true });
  // The pragmas the kernel sets on every SQLite connection, and its checkpointer beside it
  // (src/kernel/persistence.ts): the WAL is checkpointed off the event loop in both servers.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
  const checkpointer = startCheckpointer(file);
  const T = { seats: '"seats"', events: '"events"', pg: false };
  // better-sqlite3 takes `:name` binds itself, from an object of exactly the names the statement uses.
  const prepare = (text: string) => {
    const statement = db.prepare(text);
    const names = [...new Set([...text.matchAll(/(?<!:):(\w+)/g)].map((m) => m[1]))];
    return (binds: Binds) => statement.all(Object.fromEntries(names.map((n) => [n, binds[n]])));
  };
  const hold = prepare(holdOrderSql(T));
  const why = prepare(whyNotHeldSql(T));
  const heldByUser = prepare(heldByUserSql(T));
  return {
    time: (ms) => ms,
    ids: (ids) => JSON.stringify(ids),
    // all(), not get(): SQLite runs its WAL hook (the autocheckpoint) only when a statement steps to
    // its end. get() stops at the returned row and commits on reset, so no checkpoint ever ran and
    // the WAL grew by ~17 KB a hold, sparing the baseline work the kernel's executor (also all()) does.
    // One statement, so a transaction of its own, as the module runs it on SQLite.
    hold: async (binds) => hold(binds) as HeldRow[],
    why: async (binds) => why(binds) as WhyRow[],
    heldByUser: async (binds) => Number((heldByUser(binds)[0] as { n: number }).n),
    async close() {
      await checkpointer.stop();
      db.close();
    },
  };
}

function postgres(): Sql {
  // As the kernel's connections (src/kernel/persistence.ts): prepared statements planned once.
  const pool = new pg.Pool({ connectionString: pgUrl, max: 10, options: '-c plan_cache_mode=force_generic_plan' });
  const T = { seats: '"event"."seats"', events: '"event"."events"', pg: true };
  // Named statements: each connection parses and plans them once, as a prepared statement on SQLite.
  const statement = (name: string, sql: string) => {
    const { text, names } = numbered(sql);
    return (binds: Binds) => ({ name, text, values: names.map((n) => binds[n]) });
  };
  const lockUser = statement('bench_lock_user', lockUserSql());
  const lockSeats = statement('bench_lock_seats', lockSeatsSql(T));
  const hold = statement('bench_hold_order', holdOrderSql(T));
  const why = statement('bench_why_not_held', whyNotHeldSql(T));
  const heldByUser = statement('bench_held_by_user', heldByUserSql(T));
  return {
    time: (ms) => new Date(ms),
    ids: (ids) => ids,
    // holdOrder's transaction: the user's lock, the seats' locks in id order (several seats only), then the UPDATE.
    hold: (binds) =>
      inTransaction(pool, async (c) => {
        await c.query(lockUser(binds));
        if ((binds.ids as unknown[]).length > 1) await c.query(lockSeats(binds));
        return (await c.query<HeldRow>(hold(binds))).rows;
      }),
    why: async (binds) => (await pool.query<WhyRow>(why(binds))).rows,
    heldByUser: async (binds) => Number((await pool.query<{ n: string }>(heldByUser(binds))).rows[0].n),
    close: () => pool.end(),
  };
}

const sql = pgUrl ? postgres() : sqlite();

const toMs = (v: unknown) =>
  v instanceof Date ? v.getTime() : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : Number(v ?? 0);

/** The refusal that applies first (seats.ts `whyNot` and PRECEDENCE), then the hold limit. */
async function refusal(binds: Binds, seatIds: string[], now: number, holdLimit: number): Promise<Refusal> {
  const rows = new Map((await sql.why(binds)).map((r) => [r.id, r]));
  const codes = seatIds.map((id) => {
    const row = rows.get(id);
    if (!row) return 'SEAT_NOT_FOUND';
    if (toMs(row.event_date) <= now) return 'EVENT_ENDED';
    const status = row.status === 'HELD' && toMs(row.held_until) <= now ? 'AVAILABLE' : row.status;
    if (status === 'SOLD' || status === 'CHECKED_IN') return 'SEAT_ALREADY_SOLD';
    return status === 'HELD' ? 'SEAT_UNAVAILABLE' : undefined;
  });
  const first = ['SEAT_NOT_FOUND', 'EVENT_ENDED', 'SEAT_ALREADY_SOLD', 'SEAT_UNAVAILABLE'].find((c) =>
    codes.includes(c as never),
  );
  if (first)
    return new Refusal(first === 'SEAT_NOT_FOUND' ? 404 : first === 'EVENT_ENDED' ? 410 : 409, first, 'Refused.');
  if ((await sql.heldByUser(binds)) + seatIds.length > holdLimit) {
    return new Refusal(409, 'HOLD_LIMIT_REACHED', 'Too many seats held.');
  }
  return new Refusal(409, 'SEAT_UNAVAILABLE', 'Refused.');
}

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 64;

const app = new Koa();
app.silent = true;
app.use(async (ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/health') {
    ctx.body = { status: 'healthy' };
    return;
  }
  if (ctx.method !== 'POST' || ctx.path !== '/internal/event/holdSeats') {
    ctx.status = 404;
    ctx.body = { success: false, error_code: 'NOT_FOUND', message: 'No such route.' };
    return;
  }
  if (ctx.get('x-service-token') !== token) {
    ctx.status = 401;
    ctx.body = { success: false, error_code: 'UNAUTHORIZED', message: 'A service token is required.' };
    return;
  }
  try {
    let args: { seatIds?: unknown; userId?: unknown; orderId?: unknown; ttlSeconds?: unknown; holdLimit?: unknown };
    try {
      args = JSON.parse(await readBody(ctx.req));
    } catch {
      throw new Refusal(400, 'VALIDATION_ERROR', 'The request body is not valid JSON.');
    }
    const { seatIds, userId, orderId, ttlSeconds, holdLimit } = args;
    if (
      !Array.isArray(seatIds) ||
      seatIds.length < 1 ||
      !seatIds.every(isText) ||
      !isText(userId) ||
      !isText(orderId) ||
      !Number.isInteger(ttlSeconds) ||
      !Number.isInteger(holdLimit)
    ) {
      throw new Refusal(400, 'VALIDATION_ERROR', 'Invalid arguments to event.holdSeats.');
    }
    // The binds of seats.ts `holdOrder`.
    const now = Date.now();
    const until = now + (ttlSeconds as number) * 1000;
    const binds = {
      userId,
      orderId,
      until: sql.time(until),
      now: sql.time(now),
      ids: sql.ids(seatIds),
      n: seatIds.length,
      holdLimit,
    };
    const rows = await sql.hold(binds);
    if (rows.length !== seatIds.length) throw await refusal(binds, seatIds, now, holdLimit as number);
    const byId = new Map(rows.map((r) => [r.id, r]));
    const seats = seatIds.map((id) => {
      const r = byId.get(id) as HeldRow;
      return {
        seatId: r.id,
        rowNumber: r.row_number,
        seatNumber: Number(r.seat_number),
        category: r.category,
        price: Number(r.price),
      };
    });
    ctx.body = {
      success: true,
      data: {
        orderId,
        userId,
        eventId: rows[0].event_id,
        heldUntil: new Date(until).toISOString(),
        total: seats.reduce((sum, seat) => sum + seat.price, 0),
        seats,
      },
    };
  } catch (err) {
    answerError(ctx, err);
  }
});

const server = listen(app, port, `baseline (${pgUrl ? 'postgresql' : 'sqlite'})`);
server.keepAliveTimeout = 5_000;

const stop = () => {
  server.close(() => {
    sql.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
  server.closeIdleConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
