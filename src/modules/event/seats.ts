import type { Knex } from '@mikro-orm/knex';
import { v7 as uuidv7 } from 'uuid';
import type { Clock } from '../../kernel/clock.js';
import { AppError } from '../../kernel/errors.js';
import type { Database } from '../../kernel/persistence.js';
import { isoDate } from '../../kernel/schemas.js';
import type { ScanResult, SeatStatus } from './event.entities.js';
import type { EventPort, HoldDto, ScanVerdict, SeatDto } from './event.port.js';

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

/**
 * The seat state machine: AVAILABLE → HELD → SOLD → CHECKED_IN. Every write is one conditional
 * UPDATE (never read-then-write) in parameterised SQL; a read follows only to explain a refusal.
 * A hold past `held_until` counts as available for every read and every new hold, at once.
 */
export function createSeats(db: Database, clock: Clock) {
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

  const HOLD = `update ${seats} set status = 'HELD', held_by_user_id = :userId, hold_order_id = :orderId,
      held_until = case when status = 'HELD' and hold_order_id = :orderId and held_until > :now then held_until else :until end,
      updated_at = :now
    where id = :seatId
      and (status = 'AVAILABLE' or (status = 'HELD' and (held_until <= :now or (held_by_user_id = :userId and hold_order_id = :orderId))))
      and event_id in (select id from ${events} where event_date > :now)
    returning event_id, price, held_until`;
  const WHY = `select s.status, s.held_until, s.held_by_user_id, s.hold_order_id, e.event_date
    from ${seats} s join ${events} e on e.id = s.event_id where s.id = ?`;
  const RELEASE = `update ${seats} set status = 'AVAILABLE', held_by_user_id = null, hold_order_id = null,
      held_until = null, updated_at = ? where id = ? and status = 'HELD' and hold_order_id = ?`;
  const CONFIRM = `update ${seats} set status = 'SOLD', owner_user_id = :userId, price_paid = :pricePaid,
      sold_order_id = :orderId, held_by_user_id = null, hold_order_id = null, held_until = null, updated_at = :now
    where id = :seatId and status = 'HELD' and hold_order_id = :orderId and held_by_user_id = :userId and held_until > :now
    returning ${SEAT_COLUMNS}`;
  const SET_OWNER = `update ${seats} set owner_user_id = :newOwnerId, updated_at = :now
    where id = :seatId and status = 'SOLD' and owner_user_id in (:expectedOwnerId, :newOwnerId) returning ${SEAT_COLUMNS}`;
  const CHECK_IN = `update ${seats} set status = 'CHECKED_IN', checked_in_at = :now, updated_at = :now
    where id = :seatId and status = 'SOLD' and owner_user_id = :expectedOwnerId
      and event_id in (select id from ${events} where hall_id = :presentedHall)
    returning ${SEAT_COLUMNS}`;
  const SEAT_AND_HALL = `select s.${SEAT_COLUMNS.split(', ').join(', s.')}, e.hall_id
    from ${seats} s join ${events} e on e.id = s.event_id where s.id = ?`;
  const LOG = `insert into ${scans} (id, event_id, seat_id, staff_user_id, result, presented_hall, expected_hall, scanned_at)
    values (:id, :eventId, :seatId, :staffId, :result, :presentedHall, :expectedHall, :scannedAt)`;

  async function one(seatId: string): Promise<SeatRow | undefined> {
    const [row] = await db.all<SeatRow>(`select ${SEAT_COLUMNS} from ${seats} where id = ?`, [seatId]);
    return row;
  }

  /** Explains why a hold was refused, from the seat as it is now. */
  async function refusal(seatId: string, now: number): Promise<AppError> {
    const [row] = await db.all<{ status: SeatStatus; held_until: unknown; event_date: unknown }>(WHY, [seatId]);
    if (!row) return new AppError('SEAT_NOT_FOUND', 'No such seat.');
    if ((ms(row.event_date) ?? 0) <= now) return new AppError('EVENT_ENDED', 'This event has already taken place.');
    const status = effective(row, now);
    if (status === 'SOLD' || status === 'CHECKED_IN') return new AppError('SEAT_ALREADY_SOLD', 'This seat is sold.');
    return new AppError('SEAT_UNAVAILABLE', 'This seat is held by someone else; try another or come back later.');
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
        id: uuidv7(),
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

    async hold({ seatId, userId, orderId, ttlSeconds }: Args<'holdSeat'>): Promise<HoldDto> {
      const now = clock.now();
      const t = db.time(now);
      const until = db.time(now + ttlSeconds * 1000);
      const [row] = await db.all<{ event_id: string; price: number; held_until: unknown }>(HOLD, {
        userId,
        orderId,
        seatId,
        now: t,
        until,
      });
      if (!row) throw await refusal(seatId, now);
      return {
        seatId,
        eventId: row.event_id,
        userId,
        orderId,
        price: Number(row.price),
        heldUntil: iso(row.held_until) as string,
      };
    },

    async release({ seatId, orderId }: Args<'releaseHold'>) {
      const rows = await db.all(`${RELEASE} returning id`, [db.time(clock.now()), seatId, orderId]);
      return { released: rows.length > 0 };
    },

    async confirm({ seatId, orderId, userId, pricePaid }: Args<'confirmSeat'>): Promise<SeatDto> {
      const now = clock.now();
      const t = db.time(now);
      const [row] = await db.all<SeatRow>(CONFIRM, { userId, pricePaid, orderId, seatId, now: t });
      if (row) return toDto(row, now);
      const seat = await one(seatId);
      if (!seat) throw new AppError('SEAT_NOT_FOUND', 'No such seat.');
      // Already sold by this very order: a repeat of a confirm that happened.
      if ((seat.status === 'SOLD' || seat.status === 'CHECKED_IN') && seat.sold_order_id === orderId) {
        return toDto(seat, now);
      }
      if (seat.status === 'HELD' && seat.hold_order_id === orderId && seat.held_by_user_id === userId) {
        throw new AppError('HOLD_EXPIRED', 'The hold on this seat has expired.');
      }
      throw new AppError('SEAT_NOT_HELD', 'This seat is no longer held for this order.');
    },

    async setOwner({ seatId, expectedOwnerId, newOwnerId }: Args<'setOwner'>): Promise<SeatDto> {
      const [row] = await db.all<SeatRow>(SET_OWNER, {
        newOwnerId,
        now: db.time(clock.now()),
        seatId,
        expectedOwnerId,
      });
      if (row) return toDto(row);
      const seat = await one(seatId);
      if (!seat) throw new AppError('SEAT_NOT_FOUND', 'No such seat.');
      if (seat.status !== 'SOLD') throw new AppError('SEAT_UNAVAILABLE', 'Only a sold, unused ticket changes hands.');
      throw new AppError('NOT_SEAT_OWNER', 'The seat belongs to someone else.');
    },

    /** The check-in and its scan-log row commit together: no seat is checked in unlogged. */
    checkIn: ({ seatId, expectedOwnerId, staffId, presentedHall }: Args<'checkIn'>): Promise<ScanVerdict> =>
      db.tx(async (trx) => {
        const now = new Date(clock.now());
        const t = db.time(now);
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
      const t = db.time(clock.now());
      const rows = await db.all(
        `update ${seats} set status = 'AVAILABLE', held_by_user_id = null, hold_order_id = null, held_until = null,
          updated_at = ? where status = 'HELD' and held_until <= ? returning id`,
        [t, t],
      );
      return rows.length;
    },
  };
}

export type Seats = ReturnType<typeof createSeats>;
