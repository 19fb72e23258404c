import type { Knex } from '@mikro-orm/knex';
import type { Clock } from '../../kernel/clock.js';
import { AppError, type ErrorCode, type ErrorDetail } from '../../kernel/errors.js';
import type { Idempotency } from '../../kernel/idempotency.js';
import { timeOrderedId } from '../../kernel/ids.js';
import type { Database } from '../../kernel/persistence.js';
import { isoDate } from '../../kernel/schemas.js';
import type { ScanResult, SeatStatus } from './event.entities.js';
import type { EventPort, OrderHoldDto, ScanVerdict, SeatDto } from './event.port.js';

type Args<M extends keyof EventPort> = Parameters<EventPort[M]>[0];

export interface SeatRow {
  id: string;
  event_id: string;
  row_number: string;
  seat_number: number;
  category: string;
  price: number;
  status: SeatStatus;
  owner_user_id: string | null;
  held_by_user_id: string | null;
  hold_order_id: string | null;
  held_until: unknown;
  sold_order_id: string | null;
  price_paid: number | null;
  checked_in_at: unknown;
}

const SEAT_COLUMNS =
  'id, event_id, row_number, seat_number, category, price, status, owner_user_id, held_by_user_id, hold_order_id, held_until, sold_order_id, price_paid, checked_in_at';

/** What a reserve answers of each seat it holds. */
type HeldSeat = Pick<SeatRow, 'id' | 'event_id' | 'row_number' | 'seat_number' | 'category' | 'price'>;

/** A requested seat as a refused reserve finds it. */
type SeatState = HeldSeat &
  Pick<SeatRow, 'status' | 'held_by_user_id' | 'hold_order_id' | 'held_until'> & {
    event_date: unknown;
    /** Live held seats of the order holding this seat. */
    order_seats: number | string;
  };

/** Why a seat cannot be held, in the order of precedence: a refused reserve answers the first that applies. */
const HOLD_REFUSALS = {
  SEAT_NOT_FOUND: 'No such seat.',
  EVENT_ENDED: 'This event has already taken place.',
  SEAT_ALREADY_SOLD: 'This seat is sold.',
  SEAT_UNAVAILABLE: 'This seat is held by someone else; try another or come back later.',
} as const satisfies Partial<Record<ErrorCode, string>>;
type HoldRefusal = keyof typeof HOLD_REFUSALS;
const PRECEDENCE = Object.keys(HOLD_REFUSALS) as HoldRefusal[];

/** `rows` in the order of `ids` (every id has its row). */
const inOrder = <T extends { id: string }>(ids: string[], rows: T[]): T[] => {
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.map((id) => byId.get(id) as T);
};

/** The seats not of the first seat's event, as details; none when the seats are of one event. */
function otherEvents(seatIds: string[], rows: { id: string; event_id: string }[]): ErrorDetail[] {
  const eventOf = new Map(rows.map((r) => [r.id, r.event_id]));
  const first = seatIds.map((id) => eventOf.get(id)).find((e) => e !== undefined);
  return seatIds.flatMap((id, i) => {
    const event = eventOf.get(id);
    return event !== undefined && event !== first
      ? [{ field: `seat_ids[${i}]`, message: 'This seat is of another event than the first seat.' }]
      : [];
  });
}

function oneEvent(seatIds: string[], rows: { id: string; event_id: string }[]) {
  const details = otherEvents(seatIds, rows);
  if (details.length) {
    throw new AppError('VALIDATION_ERROR', 'The seats of an order must all be of one event.', details);
  }
}

function orderHold(
  seatIds: string[],
  rows: HeldSeat[],
  hold: { userId: string; orderId: string; heldUntil: string },
): OrderHoldDto {
  const seats = inOrder(seatIds, rows).map((r) => ({
    seatId: r.id,
    rowNumber: r.row_number,
    seatNumber: Number(r.seat_number),
    category: r.category,
    price: Number(r.price),
  }));
  return {
    orderId: hold.orderId,
    userId: hold.userId,
    eventId: rows[0].event_id,
    heldUntil: hold.heldUntil,
    total: seats.reduce((sum, seat) => sum + seat.price, 0),
    seats,
  };
}

/**
 * The seat state machine: AVAILABLE → HELD → SOLD → CHECKED_IN. Every write is one conditional
 * UPDATE (never read-then-write) in parameterised SQL; a read follows only to explain a refusal.
 * An order's seats are held and sold together, by one UPDATE whose own checks let it take all
 * of them or none (on PostgreSQL inside a transaction that locks them first). A hold past
 * `held_until` counts as available for every read and every new hold, at once.
 */
export function createSeats(db: Database, clock: Clock, { once }: Idempotency) {
  const seats = db.table('seats');
  const events = db.table('events');
  const scans = db.table('scan_logs');
  const ms = (v: unknown) => (v === null || v === undefined ? null : db.date(v).getTime());
  const iso = (v: unknown) => (v === null || v === undefined ? null : isoDate(db.date(v)));

  /** The status a reader must see at `now`. */
  const effective = (row: { status: SeatStatus; held_until: unknown }, now: number): SeatStatus =>
    row.status === 'HELD' && (ms(row.held_until) ?? 0) <= now ? 'AVAILABLE' : row.status;

  const toDto = (r: SeatRow, now = clock.now()): SeatDto => {
    const status = effective(r, now);
    const held = status === 'HELD';
    return {
      seatId: r.id,
      eventId: r.event_id,
      rowNumber: r.row_number,
      seatNumber: Number(r.seat_number),
      category: r.category,
      price: Number(r.price),
      status,
      ownerUserId: r.owner_user_id,
      heldByUserId: held ? r.held_by_user_id : null,
      holdOrderId: held ? r.hold_order_id : null,
      heldUntil: held ? iso(r.held_until) : null,
      soldOrderId: r.sold_order_id,
      pricePaid: r.price_paid === null ? null : Number(r.price_paid),
      checkedInAt: iso(r.checked_in_at),
    };
  };

  const pg = db.dialect === 'postgresql';
  /** `:ids` as each dialect takes a list: a uuid[] on PostgreSQL, JSON text on SQLite. */
  const idList = (ids: string[]) => (pg ? ids : JSON.stringify(ids));
  const inIds = (column: string) => (pg ? `${column} = any(:ids)` : `${column} in (select value from json_each(:ids))`);
  /**
   * An order's statements as one unit. SQLite: its one UPDATE is a transaction of its own, and
   * the module's one connection runs it alone. PostgreSQL: a transaction that locks first, so
   * that the UPDATE's checks read rows nobody else can change before it commits.
   */
  const atomically = <T>(fn: (trx?: Knex.Transaction) => Promise<T>): Promise<T> => (pg ? db.tx(fn) : fn());
  /**
   * The same for an UPDATE of the order's seats with no other lock to hold: one seat is one row,
   * which the UPDATE locks and re-checks by itself, so only several seats need the transaction.
   */
  const seatsAtomically = <T>(n: number, fn: (trx?: Knex.Transaction) => Promise<T>): Promise<T> =>
    n > 1 ? atomically(fn) : fn();

  /** Serialises one user's reserves (PostgreSQL), so that two at once cannot both pass the hold limit. */
  const LOCK_USER = `select pg_advisory_xact_lock(hashtext('event.holds'), hashtext(:userId))`;
  /** Locks the seats in id order (PostgreSQL): orders over overlapping seats wait for each other, never deadlock. */
  const LOCK_SEATS = `select id from ${seats} where id = any(:ids) order by id for update`;
  /** The user's live holds outside this order (on seats_holder_idx): the hold limit's count. */
  const HELD_BY_USER = `select count(*) as n from ${seats}
    where held_by_user_id = :userId and status = 'HELD' and held_until > :now and hold_order_id <> :orderId`;
  /** Free, or held past its TTL; `p` qualifies the columns (`s.`). */
  const takeable = (p = '') => `(${p}status = 'AVAILABLE' or (${p}status = 'HELD' and ${p}held_until <= :now))`;
  /**
   * Takes every seat or none: only when all `:n` seats are of one event, on sale and free (or
   * their hold expired), and the user's live holds in other orders leave room for them. (Without
   * a row, `having` makes the count NULL: seats of several events take nothing.)
   */
  const HOLD_ORDER = `update ${seats} set status = 'HELD', held_by_user_id = :userId, hold_order_id = :orderId,
      held_until = :until, updated_at = :now
    where ${inIds('id')} and ${takeable()}
      and (select count(*) from ${seats} s join ${events} e on e.id = s.event_id
        where ${inIds('s.id')} and ${takeable('s.')} and e.event_date > :now
        having count(distinct s.event_id) = 1) = :n
      and (${HELD_BY_USER}) + :n <= :holdLimit
    returning id, event_id, row_number, seat_number, category, price`;
  /** The requested seats as they are, with their event's date and how many seats their hold's order holds live. */
  const WHY_NOT_HELD = `select s.id, s.event_id, s.row_number, s.seat_number, s.category, s.price, s.status,
      s.held_by_user_id, s.hold_order_id, s.held_until, e.event_date,
      (select count(*) from ${seats} o where o.hold_order_id = s.hold_order_id and o.status = 'HELD' and o.held_until > :now) as order_seats
    from ${seats} s join ${events} e on e.id = s.event_id where ${inIds('s.id')}`;
  const RELEASE_ORDER = `update ${seats} set status = 'AVAILABLE', held_by_user_id = null, hold_order_id = null,
      held_until = null, updated_at = :now
    where ${pg ? `id in (select id from ${seats} where hold_order_id = :orderId and status = 'HELD' order by id for update) and ` : ''}status = 'HELD' and hold_order_id = :orderId
    returning id`;
  const SOLD_TO_ORDER = `select count(*) as n from ${seats} where ${inIds('id')} and sold_order_id = :orderId`;
  /** `:prices` is a JSON object from seat id to the price paid for it. */
  const PRICE_PAID = pg ? `(:prices::jsonb ->> id::text)::int` : `json_extract(:prices, '$."' || id || '"')`;
  const HELD_HERE = `status = 'HELD' and hold_order_id = :orderId and held_by_user_id = :userId and held_until > :now`;
  /** Sells every seat or none: only when all `:n` are held, live, for this order and user. */
  const CONFIRM_ORDER = `update ${seats} set status = 'SOLD', owner_user_id = :userId, price_paid = ${PRICE_PAID},
      sold_order_id = :orderId, held_by_user_id = null, hold_order_id = null, held_until = null, updated_at = :now
    where ${inIds('id')} and ${HELD_HERE}
      and (select count(*) from ${seats} where ${inIds('id')} and ${HELD_HERE}) = :n
    returning ${SEAT_COLUMNS}`;
  /** Expired holds; on PostgreSQL the rows another transaction is working on are left to the next sweep. */
  const SWEEP = `update ${seats} set status = 'AVAILABLE', held_by_user_id = null, hold_order_id = null, held_until = null,
      updated_at = :now
    where ${pg ? `id in (select id from ${seats} where status = 'HELD' and held_until <= :now for update skip locked) and ` : ''}status = 'HELD' and held_until <= :now
    returning id`;
  const SEATS_BY_ID = `select ${SEAT_COLUMNS} from ${seats} where ${inIds('id')}`;
  const SET_OWNER = `update ${seats} set owner_user_id = :newOwnerId, updated_at = :now
    where id = :seatId and status = 'SOLD' and owner_user_id in (:expectedOwnerId, :newOwnerId) returning ${SEAT_COLUMNS}`;
  const CHECK_IN = `update ${seats} set status = 'CHECKED_IN', checked_in_at = :now, updated_at = :now
    where id = :seatId and status = 'SOLD' and owner_user_id = :expectedOwnerId
      and event_id in (select id from ${events} where hall_id = :presentedHall)
    returning event_id, row_number, seat_number, owner_user_id, checked_in_at`;
  const SEAT_AND_HALL = `select s.${SEAT_COLUMNS.split(', ').join(', s.')}, e.hall_id
    from ${seats} s join ${events} e on e.id = s.event_id where s.id = ?`;
  const LOG = `insert into ${scans} (id, event_id, seat_id, staff_user_id, result, presented_hall, expected_hall, scanned_at)
    values (:id, :eventId, :seatId, :staffId, :result, :presentedHall, :expectedHall, :scannedAt)`;

  async function one(seatId: string): Promise<SeatRow | undefined> {
    const [row] = await db.all<SeatRow>(`select ${SEAT_COLUMNS} from ${seats} where id = ?`, [seatId]);
    return row;
  }

  /** Why a seat cannot be held now; undefined when it can. */
  function whyNot(row: SeatState | undefined, now: number): HoldRefusal | undefined {
    if (!row) return 'SEAT_NOT_FOUND';
    if ((ms(row.event_date) ?? 0) <= now) return 'EVENT_ENDED';
    const status = effective(row, now);
    if (status === 'SOLD' || status === 'CHECKED_IN') return 'SEAT_ALREADY_SOLD';
    return status === 'HELD' ? 'SEAT_UNAVAILABLE' : undefined;
  }

  /** The hold of the user's live order X when its seats are exactly these: a repeated reserve. */
  function repeatedReserve(seatIds: string[], rows: SeatState[], userId: string, now: number) {
    const orderId = rows[0]?.hold_order_id;
    const same =
      orderId &&
      rows.length === seatIds.length &&
      rows.every(
        (r) =>
          effective(r, now) === 'HELD' &&
          r.held_by_user_id === userId &&
          r.hold_order_id === orderId &&
          Number(r.order_seats) === seatIds.length &&
          (ms(r.event_date) ?? 0) > now,
      );
    if (!same) return undefined;
    const until = Math.min(...rows.map((r) => ms(r.held_until) ?? 0));
    return orderHold(seatIds, rows, { userId, orderId, heldUntil: isoDate(new Date(until)) });
  }

  /**
   * Explains a reserve that took nothing: the answer of a repeated reserve, or the refusal that
   * applies first. Undefined when nothing explains it: the seats changed since, so try again.
   */
  async function notHeld(
    { seatIds, userId, orderId, holdLimit }: Args<'holdSeats'>,
    now: number,
    trx?: Knex.Transaction,
  ): Promise<OrderHoldDto | undefined> {
    const t = db.time(now);
    const rows = await db.all<SeatState>(WHY_NOT_HELD, { now: t, ids: idList(seatIds) }, trx);
    oneEvent(seatIds, rows);
    const repeat = repeatedReserve(seatIds, rows, userId, now);
    if (repeat) return repeat;
    const byId = new Map(rows.map((r) => [r.id, r]));
    const refused = seatIds.flatMap((id, i) => {
      const code = whyNot(byId.get(id), now);
      return code ? [{ field: `seat_ids[${i}]`, code }] : [];
    });
    const code = PRECEDENCE.find((c) => refused.some((r) => r.code === c));
    if (code) {
      const details = refused.map((r) => ({ field: r.field, message: HOLD_REFUSALS[r.code] }));
      throw new AppError(code, HOLD_REFUSALS[code], details);
    }
    const [held] = await db.all<{ n: number | string }>(HELD_BY_USER, { userId, orderId, now: t }, trx);
    if (Number(held.n) + seatIds.length > holdLimit) {
      throw new AppError(
        'HOLD_LIMIT_REACHED',
        `A user holds at most ${holdLimit} seats at a time; ${Number(held.n)} are held already.`,
      );
    }
    return undefined;
  }

  async function scan(
    verdict: Omit<ScanVerdict, 'scannedAt'>,
    staffId: string,
    presentedHall: string,
    now: Date,
    trx?: Knex.Transaction,
  ): Promise<ScanVerdict> {
    await db.all(
      LOG,
      {
        id: timeOrderedId(),
        eventId: verdict.eventId,
        seatId: verdict.seatId,
        staffId,
        result: verdict.result,
        presentedHall,
        expectedHall: verdict.expectedHall,
        scannedAt: db.time(now),
      },
      trx,
    );
    return { ...verdict, scannedAt: isoDate(now) };
  }

  return {
    toDto,
    effective,
    columns: SEAT_COLUMNS,
    one,

    /**
     * Holds every seat of the order or none (see EventPort.holdSeats); `taken` is how many seats
     * it newly holds (none for a repeated reserve). The hot path is one UPDATE (PostgreSQL: after
     * the user's lock, and for several seats theirs); a refusal is explained by a read.
     */
    async holdOrder(args: Args<'holdSeats'>): Promise<{ hold: OrderHoldDto; taken: number }> {
      const { seatIds, userId, orderId, ttlSeconds, holdLimit } = args;
      // A seat freed between the UPDATE and the read that explains it leaves nothing to explain: try again.
      for (let attempt = 0; attempt < 3; attempt++) {
        const answer = await atomically(async (trx) => {
          const now = clock.now();
          const until = now + ttlSeconds * 1000;
          const ids = idList(seatIds);
          if (trx) {
            await db.all(LOCK_USER, { userId }, trx);
            // One seat is one row: the UPDATE locks and re-checks it by itself.
            if (seatIds.length > 1) await db.all(LOCK_SEATS, { ids }, trx);
          }
          const binds = { userId, orderId, until: db.time(until), now: db.time(now), ids };
          const taken = await db.all<HeldSeat>(HOLD_ORDER, { ...binds, n: seatIds.length, holdLimit }, trx);
          if (taken.length === seatIds.length) {
            const hold = orderHold(seatIds, taken, { userId, orderId, heldUntil: isoDate(new Date(until)) });
            return { hold, taken: taken.length };
          }
          const repeat = await notHeld(args, now, trx);
          return repeat && { hold: repeat, taken: 0 };
        });
        if (answer) return answer;
      }
      throw new AppError('SEAT_UNAVAILABLE', HOLD_REFUSALS.SEAT_UNAVAILABLE);
    },

    /** One statement, so a transaction of its own: every seat still HELD for the order, whether live or not. */
    async releaseOrder({ orderId }: Args<'releaseOrder'>) {
      const rows = await db.all(RELEASE_ORDER, { now: db.time(clock.now()), orderId });
      return { released: rows.length };
    },

    /**
     * Releases what is still held for the order, then counts the seats of `seatIds` it bought.
     * Once the release has committed no confirm can sell them (a confirm needs them HELD for the
     * order), so the count is final whatever arrives late.
     */
    async abandonOrder({ orderId, seatIds }: Args<'abandonOrder'>) {
      const released = await db.all(RELEASE_ORDER, { now: db.time(clock.now()), orderId });
      const [row] = await db.all<{ n: number | string }>(SOLD_TO_ORDER, { ids: idList(seatIds), orderId });
      return { released: released.length, sold: Number(row.n) };
    },

    /** Sells every seat of the order or none (see EventPort.confirmOrder): one UPDATE, a read only to explain. */
    confirmOrder: ({ orderId, userId, seats: sold }: Args<'confirmOrder'>): Promise<SeatDto[]> =>
      seatsAtomically(sold.length, async (trx) => {
        const now = clock.now();
        const seatIds = sold.map((s) => s.seatId);
        const ids = idList(seatIds);
        if (trx) await db.all(LOCK_SEATS, { ids }, trx);
        const prices = JSON.stringify(Object.fromEntries(sold.map((s) => [s.seatId, s.pricePaid])));
        const binds = { userId, prices, orderId, now: db.time(now), ids, n: seatIds.length };
        const done = await db.all<SeatRow>(CONFIRM_ORDER, binds, trx);
        if (done.length === seatIds.length) return inOrder(seatIds, done).map((r) => toDto(r, now));
        const rows = await db.all<SeatRow>(SEATS_BY_ID, { ids }, trx);
        const soldHere = (r: SeatRow) =>
          (r.status === 'SOLD' || r.status === 'CHECKED_IN') && r.sold_order_id === orderId;
        // Already sold by this very order: a repeat of a confirm that happened.
        if (rows.length === seatIds.length && rows.every(soldHere)) {
          return inOrder(seatIds, rows).map((r) => toDto(r, now));
        }
        const heldHere = (r: SeatRow) =>
          r.status === 'HELD' && r.hold_order_id === orderId && r.held_by_user_id === userId;
        if (rows.length === seatIds.length && rows.every(heldHere)) {
          throw new AppError('HOLD_EXPIRED', 'The hold on the seats of this order has expired.');
        }
        throw new AppError('SEAT_NOT_HELD', 'A seat of this order is no longer held for it.');
      }),

    /**
     * Applied once per key, whatever is retried: a late repeat of seller → buyer arriving after a
     * reversal buyer → seller answers the first move and changes nothing.
     */
    setOwner: ({ seatId, expectedOwnerId, newOwnerId, key }: Args<'setOwner'>): Promise<SeatDto> =>
      once(key, 'SET_OWNER', async (trx) => {
        const [row] = await db.all<SeatRow>(
          SET_OWNER,
          { newOwnerId, now: db.time(clock.now()), seatId, expectedOwnerId },
          trx,
        );
        if (row) return toDto(row);
        const [seat] = await db.all<SeatRow>(`select ${SEAT_COLUMNS} from ${seats} where id = ?`, [seatId], trx);
        if (!seat) throw new AppError('SEAT_NOT_FOUND', 'No such seat.');
        if (seat.status !== 'SOLD') throw new AppError('SEAT_UNAVAILABLE', 'Only a sold, unused ticket changes hands.');
        throw new AppError('NOT_SEAT_OWNER', 'The seat belongs to someone else.');
      }),

    /** The check-in and its scan-log row commit together: no seat is checked in unlogged. */
    checkIn: ({ seatId, expectedOwnerId, staffId, presentedHall }: Args<'checkIn'>): Promise<ScanVerdict> =>
      db.tx(async (trx) => {
        const now = new Date(clock.now());
        const t = db.time(now);
        // Only what the verdict names: each returned column costs the UPDATE, on every scan at every gate.
        const [won] = await db.all<SeatRow>(CHECK_IN, { now: t, seatId, expectedOwnerId, presentedHall }, trx);
        const base = (r: SeatRow, result: ScanResult, expectedHall: string | null) => ({
          result,
          seatId,
          eventId: r.event_id,
          rowNumber: r.row_number,
          seatNumber: Number(r.seat_number),
          ownerUserId: r.owner_user_id,
          expectedHall,
          checkedInAt: iso(r.checked_in_at),
        });
        if (won) return scan(base(won, 'SUCCESS', presentedHall), staffId, presentedHall, now, trx);
        const [seat] = await db.all<SeatRow & { hall_id: string }>(SEAT_AND_HALL, [seatId], trx);
        if (!seat) {
          const none = {
            seatId,
            eventId: null,
            rowNumber: null,
            seatNumber: null,
            ownerUserId: null,
            checkedInAt: null,
          };
          return scan({ ...none, result: 'NOT_FOUND', expectedHall: null }, staffId, presentedHall, now, trx);
        }
        const status = effective(seat, now.getTime());
        const result: ScanResult =
          status === 'CHECKED_IN'
            ? 'DUPLICATE'
            : status !== 'SOLD'
              ? 'UNPAID'
              : seat.owner_user_id !== expectedOwnerId
                ? 'NOT_OWNER'
                : 'WRONG_HALL';
        return scan(base(seat, result, seat.hall_id), staffId, presentedHall, now, trx);
      }),

    async logScan({ seatId, staffId, presentedHall, result }: Args<'logScan'>): Promise<ScanVerdict> {
      const [seat] = await db.all<SeatRow & { hall_id: string }>(SEAT_AND_HALL, [seatId]);
      const verdict = {
        result,
        seatId,
        eventId: seat?.event_id ?? null,
        rowNumber: seat?.row_number ?? null,
        seatNumber: seat ? Number(seat.seat_number) : null,
        ownerUserId: seat?.owner_user_id ?? null,
        expectedHall: seat?.hall_id ?? null,
        checkedInAt: iso(seat?.checked_in_at),
      };
      return scan(verdict, staffId, presentedHall, new Date(clock.now()));
    },

    /** Turns expired holds back to AVAILABLE; idempotent, and safe with several sweepers at once. */
    async sweep(): Promise<number> {
      const rows = await db.all(SWEEP, { now: db.time(clock.now()) });
      return rows.length;
    },
  };
}

export type Seats = ReturnType<typeof createSeats>;
