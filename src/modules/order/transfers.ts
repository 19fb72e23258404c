import type { Clock } from '../../kernel/clock.js';
import { AppError } from '../../kernel/errors.js';
import type { Database } from '../../kernel/persistence.js';
import { isoDate } from '../../kernel/schemas.js';
import type { TransferStatus } from './order.entities.js';
import type { OrderPort, TransferDto } from './order.port.js';

type Args<M extends keyof OrderPort> = Parameters<OrderPort[M]>[0];

interface TransferRow {
  id: string;
  seat_id: string;
  order_id: string | null;
  seller_user_id: string;
  buyer_user_id: string;
  credits_amount: number | string;
  status: TransferStatus;
  initiated_by: 'SELLER' | 'BUYER';
  dispute_reason: string | null;
  frozen_amount: number | string | null;
  expires_at: unknown;
  created_at: unknown;
  updated_at: unknown;
  completed_at: unknown;
}

const COLUMNS =
  'id, seat_id, order_id, seller_user_id, buyer_user_id, credits_amount, status, initiated_by, dispute_reason, frozen_amount, expires_at, created_at, updated_at, completed_at';

/**
 * The moves of the transfer state machine, `from → to`. PENDING_OTP → PENDING_OTP is the
 * confirm's claim: the transfer stops expiring while its credits and seat change hands.
 */
const MOVES: Record<TransferStatus, TransferStatus[]> = {
  INITIATED: ['PENDING_OTP', 'FAILED'],
  PENDING_OTP: ['PENDING_OTP', 'COMPLETED', 'FAILED'],
  COMPLETED: ['DISPUTED'],
  DISPUTED: ['COMPLETED', 'REVERSED'],
  REVERSED: [],
  FAILED: [],
};

/** A transfer under way: the partial unique index allows one per seat. */
const ACTIVE = "status in ('INITIATED', 'PENDING_OTP')";

const isUniqueViolation = (err: unknown) => {
  const code = (err as { code?: string })?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
};

/**
 * Transfers of one seat between two users, as the orchestrator's transfer flows drive them.
 * Every change is one conditional UPDATE on the expected status, so a repeat, or two processes
 * at once, change a transfer once. A transfer under way whose codes ran out (`expires_at`) reads
 * as FAILED at once, and is written FAILED by the next initiation for its seat or the sweeper.
 */
export function createTransfers(db: Database, clock: Clock) {
  const transfers = db.table('transfers');
  const iso = (v: unknown) => (v === null || v === undefined ? null : isoDate(db.date(v)));

  const expired = (r: Pick<TransferRow, 'status' | 'expires_at'>, now: number) =>
    (r.status === 'INITIATED' || r.status === 'PENDING_OTP') &&
    r.expires_at !== null &&
    r.expires_at !== undefined &&
    db.date(r.expires_at).getTime() <= now;

  function toDto(r: TransferRow): TransferDto {
    return {
      transferId: r.id,
      seatId: r.seat_id,
      orderId: r.order_id,
      sellerUserId: r.seller_user_id,
      buyerUserId: r.buyer_user_id,
      creditsAmount: Number(r.credits_amount),
      status: expired(r, clock.now()) ? 'FAILED' : r.status,
      initiatedBy: r.initiated_by,
      disputeReason: r.dispute_reason,
      frozenAmount: r.frozen_amount === null ? null : Number(r.frozen_amount),
      expiresAt: iso(r.expires_at),
      createdAt: iso(r.created_at) as string,
      updatedAt: iso(r.updated_at) as string,
      completedAt: iso(r.completed_at),
    };
  }

  async function read(transferId: string): Promise<TransferRow | undefined> {
    const [row] = await db.all<TransferRow>(`select ${COLUMNS} from ${transfers} where id = ?`, [transferId]);
    return row;
  }

  async function get(transferId: string): Promise<TransferDto> {
    const row = await read(transferId);
    if (!row) throw new AppError('TRANSFER_NOT_FOUND', 'No such transfer.');
    return toDto(row);
  }

  /** Ends the transfers under way whose codes ran out (of one seat, or all); answers how many. */
  async function expire(seatId?: string): Promise<number> {
    const now = db.time(clock.now());
    const rows = await db.all(
      `update ${transfers} set status = 'FAILED', updated_at = :now
       where ${ACTIVE} and expires_at is not null and expires_at <= :now${seatId ? ' and seat_id = :seatId' : ''}
       returning id`,
      seatId ? { now, seatId } : { now },
    );
    return rows.length;
  }

  const sameTransfer = (t: TransferDto, a: Args<'createTransfer'>) =>
    t.seatId === a.seatId &&
    t.sellerUserId === a.sellerUserId &&
    t.buyerUserId === a.buyerUserId &&
    t.creditsAmount === a.creditsAmount &&
    t.initiatedBy === a.initiatedBy;

  return {
    get,

    /**
     * INITIATED, unless another transfer of the seat is under way (TRANSFER_IN_PROGRESS: the
     * partial unique index decides, not a read). A repeat with the same id answers that transfer.
     */
    async create(a: Args<'createTransfer'>): Promise<TransferDto> {
      if (a.sellerUserId === a.buyerUserId) {
        throw new AppError('SELF_TRANSFER', 'Seller and buyer are the same user.');
      }
      // A transfer whose codes ran out no longer blocks the seat.
      await expire(a.seatId);
      const now = db.time(clock.now());
      let inserted: unknown[];
      try {
        inserted = await db.all(
          `insert into ${transfers} (id, seat_id, order_id, seller_user_id, buyer_user_id, credits_amount, status,
             initiated_by, dispute_reason, frozen_amount, expires_at, created_at, updated_at, completed_at)
           values (:id, :seatId, :orderId, :seller, :buyer, :amount, 'INITIATED', :initiatedBy, null, null, :expiresAt,
             :now, :now, null)
           on conflict (id) do nothing returning id`,
          {
            id: a.transferId,
            seatId: a.seatId,
            orderId: a.orderId,
            seller: a.sellerUserId,
            buyer: a.buyerUserId,
            amount: a.creditsAmount,
            initiatedBy: a.initiatedBy,
            expiresAt: db.time(Date.parse(a.expiresAt)),
            now,
          },
        );
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        throw new AppError('TRANSFER_IN_PROGRESS', 'Another transfer of this ticket is under way.');
      }
      const found = await get(a.transferId);
      if (!inserted.length && !sameTransfer(found, a)) {
        throw new AppError('VALIDATION_ERROR', 'This transfer id is taken by another transfer.', [
          { field: 'transferId', message: 'transferId names a transfer of another seat, users or amount' },
        ]);
      }
      return found;
    },

    /**
     * One conditional move `from → to`. `changed` says whether this call made it; a repeat finds
     * the transfer already there and answers it unchanged. The confirm's claim (PENDING_OTP →
     * PENDING_OTP) clears `expires_at` and only succeeds before it; DISPUTED is reached once per
     * transfer (a decided dispute cannot be opened again).
     */
    async update(a: Args<'updateTransfer'>): Promise<{ changed: boolean; transfer: TransferDto }> {
      if (!MOVES[a.from].includes(a.to)) {
        throw new AppError('VALIDATION_ERROR', 'The transfer cannot move that way.', [
          { field: 'to', message: `a ${a.from} transfer cannot become ${a.to}` },
        ]);
      }
      const binds: Record<string, unknown> = { id: a.transferId, from: a.from, to: a.to, now: db.time(clock.now()) };
      const set = ['status = :to', 'updated_at = :now'];
      const where = ['id = :id', 'status = :from'];
      if (a.to === 'COMPLETED') set.push('completed_at = coalesce(completed_at, :now)');
      if (a.expiresAt !== undefined) {
        set.push('expires_at = :expiresAt');
        binds.expiresAt = a.expiresAt === null ? null : db.time(Date.parse(a.expiresAt));
      }
      if (a.from === 'PENDING_OTP' || a.from === 'INITIATED') {
        // A transfer whose codes ran out only fails; the claim takes a live one, once.
        if (a.to !== 'FAILED') where.push('(expires_at is null or expires_at > :now)');
        if (a.from === a.to || a.unclaimed) where.push('expires_at is not null');
      }
      if (a.to === 'DISPUTED') {
        set.push('dispute_reason = :reason', 'frozen_amount = :frozen');
        where.push('dispute_reason is null');
        binds.reason = a.disputeReason ?? null;
        binds.frozen = a.frozenAmount ?? 0;
      }
      const rows = await db.all(
        `update ${transfers} set ${set.join(', ')} where ${where.join(' and ')} returning id`,
        binds,
      );
      return { changed: rows.length > 0, transfer: await get(a.transferId) };
    },

    /** Ends every transfer under way whose codes ran out; safe with several sweepers at once. */
    sweep: () => expire(),
  };
}

export type Transfers = ReturnType<typeof createTransfers>;
