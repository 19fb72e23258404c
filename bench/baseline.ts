/**
 * The benchmark's baseline: a bare Koa server with one route, `POST /internal/event/holdSeat`,
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
 * copied from src/modules/event/seats.ts (HOLD and WHY in createSeats) and must be kept in sync by
 * hand; the connection is set up as src/kernel/persistence.ts sets up a module's.
 */
import type { IncomingMessage } from 'node:http';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import Koa from 'koa';
import pg from 'pg';
import { BACKSTOP_AUTOCHECKPOINT_PAGES, startCheckpointer } from '../src/kernel/checkpoint.js';

type Status = 'AVAILABLE' | 'HELD' | 'SOLD' | 'CHECKED_IN';
interface HoldRow {
  event_id: string;
  price: number | string;
  held_until: unknown;
}
interface WhyRow {
  status: Status;
  held_until: unknown;
  held_by_user_id: string | null;
  hold_order_id: string | null;
  event_date: unknown;
}
interface Sql {
  /** Timestamps as the event module stores them: epoch ms on SQLite, timestamptz on PostgreSQL. */
  time(ms: number): number | Date;
  hold(params: unknown[]): Promise<HoldRow | undefined>;
  why(seatId: string): Promise<WhyRow | undefined>;
  close(): Promise<void>;
}

const port = Number(process.env.BASELINE_PORT || 0);
const token = process.env.SERVICE_TOKEN || '';
const pgUrl = process.env.DATABASE_URL || '';

// --- Copied from src/modules/event/seats.ts (createSeats: HOLD, WHY); `T.seats`/`T.events` are db.table(...). ---
const holdSql = (T: {
  seats: string;
  events: string;
}) => `update ${T.seats} set status = 'HELD', held_by_user_id = ?, hold_order_id = ?,
      held_until = case when status = 'HELD' and hold_order_id = ? and held_until > ? then held_until else ? end,
      updated_at = ?
    where id = ?
      and (status = 'AVAILABLE' or (status = 'HELD' and (held_until <= ? or (held_by_user_id = ? and hold_order_id = ?))))
      and event_id in (select id from ${T.events} where event_date > ?)
    returning event_id, price, held_until`;
const whySql = (T: {
  seats: string;
  events: string;
}) => `select s.status, s.held_until, s.held_by_user_id, s.hold_order_id, e.event_date
    from ${T.seats} s join ${T.events} e on e.id = s.event_id where s.id = ?`;
// --- end of the copy ---

/** `?` placeholders to PostgreSQL's `$n`, as knex does for the event module. */
const numbered = (sql: string) => {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
};

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
  const T = { seats: '"seats"', events: '"events"' };
  const hold = db.prepare(holdSql(T));
  const why = db.prepare(whySql(T));
  return {
    time: (ms) => ms,
    // all(), not get(): SQLite runs its WAL hook (the autocheckpoint) only when a statement steps to
    // its end. get() stops at the returned row and commits on reset, so no checkpoint ever ran and
    // the WAL grew by ~17 KB a hold, sparing the baseline work the kernel's executor (also all()) does.
    hold: async (params) => hold.all(...params)[0] as HoldRow | undefined,
    why: async (seatId) => why.get(seatId) as WhyRow | undefined,
    async close() {
      await checkpointer.stop();
      db.close();
    },
  };
}

function postgres(): Sql {
  const pool = new pg.Pool({ connectionString: pgUrl, max: 10 });
  const T = { seats: '"event"."seats"', events: '"event"."events"' };
  // Named statements: each connection parses and plans them once, as a prepared statement on SQLite.
  const hold = { name: 'bench_hold', text: numbered(holdSql(T)) };
  const why = { name: 'bench_why', text: numbered(whySql(T)) };
  return {
    time: (ms) => new Date(ms),
    hold: async (params) => (await pool.query<HoldRow>({ ...hold, values: params })).rows[0],
    why: async (seatId) => (await pool.query<WhyRow>({ ...why, values: [seatId] })).rows[0],
    close: () => pool.end(),
  };
}

const sql = pgUrl ? postgres() : sqlite();

const toMs = (v: unknown) =>
  v instanceof Date ? v.getTime() : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : Number(v ?? 0);
const iso = (v: unknown) => new Date(toMs(v)).toISOString();

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The refusal the event module gives (seats.ts `refusal`), from the seat as it is now. */
async function refusal(seatId: string, now: number): Promise<Refusal> {
  const row = await sql.why(seatId);
  if (!row) return new Refusal(404, 'SEAT_NOT_FOUND', 'No such seat.');
  if (toMs(row.event_date) <= now) return new Refusal(410, 'EVENT_ENDED', 'This event has already taken place.');
  const status = row.status === 'HELD' && toMs(row.held_until) <= now ? 'AVAILABLE' : row.status;
  if (status === 'SOLD' || status === 'CHECKED_IN') return new Refusal(409, 'SEAT_ALREADY_SOLD', 'This seat is sold.');
  return new Refusal(409, 'SEAT_UNAVAILABLE', 'This seat is held by someone else; try another or come back later.');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 64;

const app = new Koa();
app.silent = true;
app.use(async (ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/health') {
    ctx.body = { status: 'healthy' };
    return;
  }
  if (ctx.method !== 'POST' || ctx.path !== '/internal/event/holdSeat') {
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
    let args: { seatId?: unknown; userId?: unknown; orderId?: unknown; ttlSeconds?: unknown };
    try {
      args = JSON.parse(await readBody(ctx.req));
    } catch {
      throw new Refusal(400, 'VALIDATION_ERROR', 'The request body is not valid JSON.');
    }
    const { seatId, userId, orderId, ttlSeconds } = args;
    if (!isText(seatId) || !isText(userId) || !isText(orderId) || !Number.isInteger(ttlSeconds)) {
      throw new Refusal(400, 'VALIDATION_ERROR', 'Invalid arguments to event.holdSeat.');
    }
    // The parameters of seats.ts `hold`, in the same order.
    const now = Date.now();
    const t = sql.time(now);
    const until = sql.time(now + (ttlSeconds as number) * 1000);
    const row = await sql.hold([userId, orderId, orderId, t, until, t, seatId, t, userId, orderId, t]);
    if (!row) throw await refusal(seatId, now);
    ctx.body = {
      success: true,
      data: {
        seatId,
        eventId: row.event_id,
        userId,
        orderId,
        price: Number(row.price),
        heldUntil: iso(row.held_until),
      },
    };
  } catch (err) {
    if (!(err instanceof Refusal)) {
      console.error(err);
      ctx.status = 500;
      ctx.body = { success: false, error_code: 'INTERNAL_ERROR', message: 'Internal error.' };
      return;
    }
    ctx.status = err.status;
    ctx.body = { success: false, error_code: err.code, message: err.message };
  }
});

const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address();
  console.log(
    `baseline (${pgUrl ? 'postgresql' : 'sqlite'}) listening on ${typeof address === 'object' ? address?.port : address}`,
  );
});
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
