import { randomUUID } from 'node:crypto';
import type { Principal } from '../../kernel/auth.js';
import type { Clock } from '../../kernel/clock.js';
import { AppError, type ErrorDetail } from '../../kernel/errors.js';
import { timeOrderedId } from '../../kernel/ids.js';
import type { Database } from '../../kernel/persistence.js';
import type { RequiredPorts } from '../../kernel/registry.js';
import { credits } from '../../kernel/schemas.js';
import type { TransferDto } from '../order/index.js';
import type { SagaKind } from './orchestrator.entities.js';
import {
  isRefusal,
  type Outcome,
  refusalOf,
  refusedOr,
  type SagaFlow,
  type SagaLog,
  SagaTakenOver,
  settle,
  withRetry,
} from './saga.js';

type Ports = RequiredPorts<'user' | 'event' | 'order'>;

export interface InitiateView {
  transfer_id: string;
  seat_id: string;
  status: 'PENDING_OTP';
  initiated_by: 'SELLER' | 'BUYER';
  credits_amount: number;
  expires_at: string;
  message: string;
}

export interface ConfirmView {
  transfer_id: string;
  status: 'COMPLETED';
  seat_id: string;
  new_owner_user_id: string;
  credits_transferred: number;
  message: string;
}

export interface DisputeView {
  transfer_id: string;
  status: 'DISPUTED';
  frozen_credits: number;
  message: string;
}

export interface ReverseView {
  transfer_id: string;
  status: 'REVERSED';
  seat_id: string;
  restored_owner_user_id: string;
  credits_returned: number;
  message: string;
}

export interface ResolveView {
  transfer_id: string;
  status: 'COMPLETED';
  credits_released: number;
  message: string;
}

/** What every transfer saga knows of its transfer. */
interface Deal {
  seatId: string;
  seller: string;
  buyer: string;
  /** In cents; zero for a ticket given away. */
  amount: number;
  error?: Outcome<never>;
}

interface InitiateData extends Deal {
  orderId: string | null;
  initiatedBy: 'SELLER' | 'BUYER';
  /** Until when the transfer may be confirmed: first a guess, then the codes' own expiry. */
  expiresAt: string;
}

type DisputeAction = 'open' | 'resolve' | 'reverse';

interface DisputeData extends Partial<Deal> {
  action: DisputeAction;
  reason?: string;
  /** What the dispute froze of the seller's credits, in cents. */
  frozen?: number;
}

const UNFINISHED: Outcome<never> = {
  ok: false,
  code: 'SERVICE_UNAVAILABLE',
  message: 'A service this transfer needs did not answer; nothing was kept. Try again shortly.',
};

const invalidState = (message: string) => refusalOf(new AppError('TRANSFER_INVALID_STATE', message));

const dealOf = (t: TransferDto): Deal => ({
  seatId: t.seatId,
  seller: t.sellerUserId,
  buyer: t.buyerUserId,
  amount: t.creditsAmount,
});

/** The end of a saga that succeeded, with its answer. */
const done = <R>(data: R) => ({ end: 'DONE' as const, outcome: { ok: true as const, data } });

/** What the dispute saga knows once its first step has read the transfer. */
const known = (data: DisputeData) => data as DisputeData & Deal;

/**
 * Transfers of a ticket between two users, as sagas on the kernel's building blocks (saga.ts):
 *
 * - initiate: create the transfer (INITIATED; the order module's partial unique index refuses a
 *   second one under way for the seat) → send both codes → PENDING_OTP until the codes expire.
 *   Cut short, it is undone: the transfer ends FAILED.
 * - confirm (both codes checked first): claim the transfer (it stops expiring) → credits from the
 *   buyer into the seller's *frozen* credits → the seat from seller to buyer → the credits
 *   released to the seller → COMPLETED. Holding the price frozen until the seat has moved means
 *   the compensation of a refused seat move (credits back to the buyer) can always be paid: the
 *   seller cannot have spent them meanwhile. Recovery drives it forward.
 * - dispute, resolve and reverse share one saga kind, so that at most one of them runs for a
 *   transfer at a time; each checks the transfer's status first. Reverse moves the seat back
 *   before any credits, so a buyer who no longer holds the ticket is refused with nothing changed.
 *
 * Every call to another module carries a key derived from the transfer (`transfer:<id>:<step>`),
 * so a retried or recovered step applies once; the event module applies each seat move once per
 * key, so a late retry of seller → buyer after a reversal changes nothing.
 */
/** How a transfer saga ended, for the business counter. */
export type TransferEnd = 'completed' | 'failed' | 'disputed' | 'resolved' | 'reversed';

export function createTransfers(
  ports: Ports,
  sagas: SagaLog,
  db: Database,
  clock: Clock,
  waitMs: number,
  counted: (end: TransferEnd) => void = () => undefined,
) {
  const { user, event, order } = ports;
  const approvals = db.table('transfer_approvals');
  const key = (transferId: string, step: string) => `transfer:${transferId}:${step}`;

  const initiateFlow: SagaFlow<InitiateData, InitiateView> = {
    kind: 'initiate',
    steps: {
      async create(run) {
        const d = run.data;
        try {
          await withRetry(() =>
            order.createTransfer({
              transferId: run.orderId,
              seatId: d.seatId,
              orderId: d.orderId,
              sellerUserId: d.seller,
              buyerUserId: d.buyer,
              creditsAmount: d.amount,
              initiatedBy: d.initiatedBy,
              expiresAt: d.expiresAt,
            }),
          );
        } catch (err) {
          if (isRefusal(err)) return { end: 'FAILED', outcome: refusalOf(err) };
          return { next: 'abandon', data: { error: UNFINISHED } };
        }
        return { next: 'codes' };
      },
      async codes(run) {
        const send = (userId: string, party: string) =>
          withRetry(() =>
            user.sendOtp({
              userId,
              purpose: 'transfer',
              referenceId: run.orderId,
              key: key(run.orderId, `otp:${party}`),
            }),
          );
        try {
          const sent = await Promise.all([send(run.data.seller, 'seller'), send(run.data.buyer, 'buyer')]);
          const until = Math.min(...sent.map((s) => Date.parse(s.expiresAt)));
          return { next: 'pending', data: { expiresAt: new Date(until).toISOString() } };
        } catch (err) {
          return { next: 'abandon', data: { error: isRefusal(err) ? refusalOf(err) : UNFINISHED } };
        }
      },
      async pending(run) {
        const { transfer } = await withRetry(() =>
          order.updateTransfer({
            transferId: run.orderId,
            from: 'INITIATED',
            to: 'PENDING_OTP',
            expiresAt: run.data.expiresAt,
          }),
        );
        if (transfer.status !== 'PENDING_OTP') return { next: 'abandon', data: { error: UNFINISHED } };
        return done(initiateView(transfer));
      },
      async abandon(run) {
        const moved = await withRetry(() =>
          order.updateTransfer({ transferId: run.orderId, from: 'INITIATED', to: 'FAILED' }),
        ).catch((err) => {
          // Its creation never happened: there is nothing to end.
          if (isRefusal(err) && err.code === 'TRANSFER_NOT_FOUND') return undefined;
          throw err;
        });
        // Cut short after the codes went out and the transfer was opened: it stands.
        if (moved?.transfer.status === 'PENDING_OTP') {
          return done(initiateView(moved.transfer));
        }
        return { end: 'COMPENSATED', outcome: run.data.error ?? UNFINISHED };
      },
    },
    // Nobody got the answer of an initiation cut short: it is undone, unless its codes went out.
    resume: (step) => (step === 'pending' ? 'pending' : 'abandon'),
  };

  const confirmFlow: SagaFlow<Deal, ConfirmView> = {
    kind: 'confirm',
    steps: {
      async claim(run) {
        const { changed, transfer } = await withRetry(() =>
          order.updateTransfer({ transferId: run.orderId, from: 'PENDING_OTP', to: 'PENDING_OTP', expiresAt: null }),
        );
        // Claimed now, or by this saga before a crash (only a running confirm clears the expiry).
        if (changed || (transfer.status === 'PENDING_OTP' && transfer.expiresAt === null)) return { next: 'pay' };
        if (transfer.status === 'FAILED') {
          // Codes that ran out: the transfer is written FAILED now rather than at the next sweep.
          await withRetry(() => cancel(run.orderId));
          return { end: 'FAILED', outcome: refusalOf(expiredCodes()) };
        }
        return { end: 'FAILED', outcome: invalidState(`This transfer is ${transfer.status}.`) };
      },
      async pay(run) {
        const { seller, buyer, amount } = run.data;
        if (amount > 0) {
          const paid = await refusedOr(() =>
            user.moveCredits({
              fromUserId: buyer,
              toUserId: seller,
              amount,
              key: key(run.orderId, 'pay'),
              referenceId: run.orderId,
              target: 'frozen',
            }),
          );
          if ('refused' in paid) return { next: 'fail', data: { error: refusalOf(paid.refused) } };
        }
        return { next: 'owner' };
      },
      async owner(run) {
        const moved = await refusedOr(() =>
          event.setOwner({
            seatId: run.data.seatId,
            expectedOwnerId: run.data.seller,
            newOwnerId: run.data.buyer,
            key: key(run.orderId, 'owner'),
          }),
        );
        if ('refused' in moved) return { next: 'refund', data: { error: refusalOf(moved.refused) } };
        return { next: 'release' };
      },
      async release(run) {
        const { seller, amount } = run.data;
        if (amount > 0) {
          await withRetry(() => user.releaseCredits({ userId: seller, amount, key: key(run.orderId, 'release') }));
        }
        return { next: 'complete' };
      },
      async complete(run) {
        const { transfer } = await withRetry(() =>
          order.updateTransfer({ transferId: run.orderId, from: 'PENDING_OTP', to: 'COMPLETED' }),
        );
        if (transfer.status !== 'COMPLETED') {
          throw new Error(`transfer ${run.orderId} is ${transfer.status} after its seat and credits moved`);
        }
        counted('completed');
        return done(confirmView(transfer));
      },
      async refund(run) {
        const { seller, buyer, amount } = run.data;
        if (amount > 0) {
          await withRetry(() =>
            user.moveCredits({
              fromUserId: seller,
              toUserId: buyer,
              amount,
              key: key(run.orderId, 'refund'),
              referenceId: run.orderId,
              source: 'frozen',
            }),
          );
        }
        return { next: 'fail' };
      },
      async fail(run) {
        await withRetry(() => order.updateTransfer({ transferId: run.orderId, from: 'PENDING_OTP', to: 'FAILED' }));
        counted('failed');
        return { end: 'COMPENSATED', outcome: run.data.error ?? UNFINISHED };
      },
    },
    // Both parties agreed: every step is keyed, so recovery re-runs the recorded one and goes on.
    resume: (step) => step,
  };

  const disputeFlow: SagaFlow<DisputeData, DisputeView | ReverseView | ResolveView> = {
    kind: 'dispute',
    steps: {
      async check(run) {
        const transfer = await withRetry(() => order.getTransfer({ transferId: run.orderId }));
        const deal = { ...dealOf(transfer), frozen: transfer.frozenAmount ?? 0 };
        if (run.data.action === 'open') {
          if (transfer.status === 'COMPLETED' && transfer.disputeReason === null) {
            return { next: 'freeze', data: deal };
          }
          const why =
            transfer.status === 'COMPLETED'
              ? 'This transfer was disputed before and the dispute was decided.'
              : `Only a completed transfer can be disputed; this one is ${transfer.status}.`;
          return { end: 'FAILED', outcome: invalidState(why) };
        }
        if (transfer.status !== 'DISPUTED') {
          return {
            end: 'FAILED',
            outcome: invalidState(`Only a disputed transfer is decided; this one is ${transfer.status}.`),
          };
        }
        return { next: run.data.action === 'resolve' ? 'release' : 'seatback', data: deal };
      },
      async freeze(run) {
        const { seller, amount } = known(run.data);
        let frozen = 0;
        if (amount > 0) {
          const freeze = await withRetry(() =>
            user.freezeCredits({ userId: seller, amount, key: key(run.orderId, 'freeze') }),
          );
          frozen = freeze.frozen;
        }
        return { next: 'disputed', data: { frozen } };
      },
      async disputed(run) {
        const { transfer } = await withRetry(() =>
          order.updateTransfer({
            transferId: run.orderId,
            from: 'COMPLETED',
            to: 'DISPUTED',
            disputeReason: run.data.reason as string,
            frozenAmount: run.data.frozen ?? 0,
          }),
        );
        const frozen = transfer.frozenAmount ?? 0;
        counted('disputed');
        return done<DisputeView>({
          transfer_id: run.orderId,
          status: 'DISPUTED',
          frozen_credits: credits(frozen),
          message: `Disputed: ${credits(frozen)} of the seller's credits are frozen until an admin decides.`,
        });
      },
      async release(run) {
        const frozen = run.data.frozen ?? 0;
        if (frozen > 0) {
          await withRetry(() =>
            user.releaseCredits({ userId: known(run.data).seller, amount: frozen, key: key(run.orderId, 'unfreeze') }),
          );
        }
        return { next: 'resolved' };
      },
      async resolved(run) {
        await withRetry(() => order.updateTransfer({ transferId: run.orderId, from: 'DISPUTED', to: 'COMPLETED' }));
        counted('resolved');
        const frozen = run.data.frozen ?? 0;
        return done<ResolveView>({
          transfer_id: run.orderId,
          status: 'COMPLETED',
          credits_released: credits(frozen),
          message: `Dispute rejected: the transfer stands and ${credits(frozen)} credits are released to the seller.`,
        });
      },
      async seatback(run) {
        const { seatId, seller, buyer } = known(run.data);
        const back = await refusedOr(() =>
          event.setOwner({ seatId, expectedOwnerId: buyer, newOwnerId: seller, key: key(run.orderId, 'seat-back') }),
        );
        if ('refused' in back) {
          // Nothing has moved yet: the transfer stays DISPUTED.
          const gone = new AppError(
            'SEAT_UNAVAILABLE',
            'The buyer no longer holds this ticket (used or passed on); it cannot be reversed.',
          );
          return { end: 'FAILED', outcome: refusalOf(gone) };
        }
        return { next: 'refund' };
      },
      async refund(run) {
        const { seller, buyer, frozen = 0 } = known(run.data);
        if (frozen > 0) {
          await withRetry(() =>
            user.moveCredits({
              fromUserId: seller,
              toUserId: buyer,
              amount: frozen,
              key: key(run.orderId, 'give-back'),
              referenceId: run.orderId,
              source: 'frozen',
            }),
          );
        }
        return { next: 'reversed' };
      },
      async reversed(run) {
        const { seatId, seller, frozen = 0 } = known(run.data);
        await withRetry(() => order.updateTransfer({ transferId: run.orderId, from: 'DISPUTED', to: 'REVERSED' }));
        counted('reversed');
        return done<ReverseView>({
          transfer_id: run.orderId,
          status: 'REVERSED',
          seat_id: seatId,
          restored_owner_user_id: seller,
          credits_returned: credits(frozen),
          message: `Reversed: the ticket is the seller's again and ${credits(frozen)} credits went back to the buyer.`,
        });
      },
    },
    resume: (step) => step,
  };

  for (const flow of [initiateFlow, confirmFlow, disputeFlow]) sagas.register(flow);

  function initiateView(t: TransferDto): InitiateView {
    return {
      transfer_id: t.transferId,
      seat_id: t.seatId,
      status: 'PENDING_OTP',
      initiated_by: t.initiatedBy,
      credits_amount: credits(t.creditsAmount),
      expires_at: t.expiresAt as string,
      message: `Codes sent to both phones: confirm with both before ${t.expiresAt}.`,
    };
  }

  function confirmView(t: TransferDto): ConfirmView {
    return {
      transfer_id: t.transferId,
      status: 'COMPLETED',
      seat_id: t.seatId,
      new_owner_user_id: t.buyerUserId,
      credits_transferred: credits(t.creditsAmount),
      message: 'Done: the ticket is the buyer’s and the credits are the seller’s.',
    };
  }

  const expiredCodes = () =>
    new AppError('OTP_EXPIRED', 'The codes of this transfer have expired, so it is cancelled; start a new one.');

  /** The transfer, for one of its two parties; anyone else gets `refusal`. */
  async function asParty(principal: Principal, transferId: string, refusal: 'FORBIDDEN' | 'TRANSFER_NOT_FOUND') {
    const found = await order.getTransfer({ transferId });
    if (found.sellerUserId !== principal.userId && found.buyerUserId !== principal.userId) {
      throw refusal === 'FORBIDDEN'
        ? new AppError('FORBIDDEN', 'Only the seller or the buyer of this transfer may do that.')
        : new AppError('TRANSFER_NOT_FOUND', 'No such transfer.');
    }
    return found;
  }

  /** Why a transfer cannot take codes now, if it cannot. */
  function notConfirmable(t: TransferDto): AppError | undefined {
    if (t.status === 'PENDING_OTP') return undefined;
    const ranOut = t.status === 'FAILED' && t.expiresAt !== null && Date.parse(t.expiresAt) <= clock.now();
    return ranOut ? expiredCodes() : new AppError('TRANSFER_INVALID_STATE', `This transfer is ${t.status}.`);
  }

  /** Ends a transfer that no confirm has claimed yet FAILED (a third wrong code). */
  async function cancel(transferId: string) {
    await order.updateTransfer({ transferId, from: 'PENDING_OTP', to: 'FAILED', unclaimed: true });
  }

  async function approved(transferId: string, userId: string): Promise<boolean> {
    const [row] = await db.all(`select 1 as hit from ${approvals} where transfer_id = ? and user_id = ?`, [
      transferId,
      userId,
    ]);
    return !!row;
  }

  async function approve(transferId: string, userId: string) {
    await db.all(
      `insert into ${approvals} (transfer_id, user_id, verified_at) values (?, ?, ?) on conflict (transfer_id, user_id) do nothing`,
      [transferId, userId, db.time(clock.now())],
    );
  }

  /** One party's own code; a third wrong one ends the transfer FAILED. */
  async function checkCode(transferId: string, userId: string, code: string) {
    try {
      await user.verifyOtp({
        userId,
        purpose: 'transfer',
        referenceId: transferId,
        code,
        key: `${key(transferId, 'otp-check')}:${randomUUID()}`,
      });
    } catch (err) {
      if (isRefusal(err) && err.code === 'OTP_MAX_RETRIES') await cancel(transferId);
      throw err;
    }
    await approve(transferId, userId);
  }

  /**
   * Runs a saga of a kind that is exclusive per transfer: when one is running already, this waits
   * for it and starts again, and the new saga's first step sees what the other one did.
   */
  async function exclusive<D, R>(kind: SagaKind, transferId: string, userId: string, step: string, data: D) {
    for (let round = 0; round < 5; round++) {
      const started = await sagas.start<D, R>({ kind, orderId: transferId, userId, step, data });
      if ('outcome' in started) return settle(started.outcome);
      const running = await sagas.running(transferId, kind);
      if (running) await sagas.awaitSaga(running.id, waitMs);
    }
    throw new SagaTakenOver();
  }

  return {
    async initiate(
      principal: Principal,
      body: { seat_id: string; seller_user_id: string; buyer_user_id: string; credits_amount: number },
    ): Promise<InitiateView> {
      const { seat_id: seatId, seller_user_id: seller, buyer_user_id: buyer, credits_amount: amount } = body;
      if (seller === buyer) throw new AppError('SELF_TRANSFER', 'The seller and the buyer are the same user.');
      if (principal.userId !== seller && principal.userId !== buyer) {
        throw new AppError('FORBIDDEN', 'You can only start a transfer as its seller or its buyer.');
      }
      // Read together; the first refusal in the order of the checks is the answer.
      const [sellerUser, buyerUser, seat] = await Promise.allSettled([
        user.getUser({ userId: seller }),
        user.getUser({ userId: buyer }),
        event.getSeat({ seatId }),
      ]);
      for (const read of [sellerUser, buyerUser, seat]) if (read.status === 'rejected') throw read.reason;
      const found = (seat as PromiseFulfilledResult<Awaited<ReturnType<typeof event.getSeat>>>).value;
      const payer = (buyerUser as PromiseFulfilledResult<Awaited<ReturnType<typeof user.getUser>>>).value;
      if (found.ownerUserId !== seller) throw new AppError('NOT_SEAT_OWNER', 'The seller does not own this ticket.');
      if (found.status !== 'SOLD') {
        throw new AppError('SEAT_UNAVAILABLE', 'This ticket has been used at the door; it cannot change hands.');
      }
      if (payer.creditBalance < amount) {
        throw new AppError('INSUFFICIENT_CREDITS', 'The buyer does not have enough credits for this transfer.');
      }
      const transferId = timeOrderedId();
      const started = await sagas.start<InitiateData, InitiateView>({
        kind: 'initiate',
        orderId: transferId,
        userId: principal.userId,
        step: 'create',
        data: {
          seatId,
          seller,
          buyer,
          amount,
          orderId: found.soldOrderId,
          initiatedBy: principal.userId === seller ? 'SELLER' : 'BUYER',
          // Until the codes say when they expire, the transfer lasts as long as the saga may.
          expiresAt: new Date(clock.now() + waitMs).toISOString(),
        },
      });
      if (!('outcome' in started)) throw new Error('a new transfer id is already taken');
      return settle(started.outcome);
    },

    async confirm(
      principal: Principal,
      body: { transfer_id: string; seller_otp?: string; buyer_otp?: string },
    ): Promise<ConfirmView> {
      const transfer = await asParty(principal, body.transfer_id, 'FORBIDDEN');
      const refusal = notConfirmable(transfer);
      if (refusal) throw refusal;
      const parties = [
        { field: 'seller_otp', who: 'seller', userId: transfer.sellerUserId, code: body.seller_otp },
        { field: 'buyer_otp', who: 'buyer', userId: transfer.buyerUserId, code: body.buyer_otp },
      ];
      // Both codes are checked, side by side, before anything moves; neither is used up by the other's failure.
      const checks = await Promise.allSettled(
        parties.map(async (p) => {
          if (p.code !== undefined) return checkCode(transfer.transferId, p.userId, p.code);
          if (!(await approved(transfer.transferId, p.userId))) {
            throw new AppError('VALIDATION_ERROR', 'A code is missing.', [
              { field: p.field, message: `the ${p.who} has not verified a code for this transfer yet; give it here` },
            ]);
          }
        }),
      );
      const failed = checks
        .map((c, i) => ({ c, p: parties[i] }))
        .filter((x): x is { c: PromiseRejectedResult; p: (typeof parties)[number] } => x.c.status === 'rejected');
      if (failed.length) {
        const errors = failed.map((f) => f.c.reason);
        const outage = errors.find((e) => !isRefusal(e));
        if (outage) throw outage;
        // The worst refusal decides the answer; each party's own is named in the details.
        const rank = ['OTP_MAX_RETRIES', 'OTP_EXPIRED', 'OTP_INVALID', 'VALIDATION_ERROR'];
        const worst = [...errors].sort((a, b) => rank.indexOf(a.code) - rank.indexOf(b.code))[0] as AppError;
        const details: ErrorDetail[] = failed.flatMap(
          (f) => f.c.reason.details ?? [{ field: f.p.field, message: `${f.p.who}: ${f.c.reason.message}` }],
        );
        const message =
          worst.code === 'OTP_MAX_RETRIES' ? `${worst.message} The transfer is cancelled.` : worst.message;
        throw new AppError(worst.code, message, details);
      }
      return exclusive<Deal, ConfirmView>('confirm', transfer.transferId, principal.userId, 'claim', dealOf(transfer));
    },

    /** A transfer code verified on its own (POST /api/verify-otp): confirm may then leave it out. */
    async verifyOtp(principal: Principal, transferId: string, code: string) {
      const transfer = await asParty(principal, transferId, 'TRANSFER_NOT_FOUND');
      const refusal = notConfirmable(transfer);
      if (refusal) throw refusal;
      await checkCode(transferId, principal.userId, code);
      return {
        verified: true as const,
        message: 'Code verified; this transfer can be confirmed without it until it completes, fails or expires.',
      };
    },

    async dispute(principal: Principal, body: { transfer_id: string; reason: string }): Promise<DisputeView> {
      const transfer = await asParty(principal, body.transfer_id, 'FORBIDDEN');
      return exclusive<DisputeData, DisputeView>('dispute', transfer.transferId, principal.userId, 'check', {
        action: 'open',
        reason: body.reason,
      });
    },

    async resolve(principal: Principal, transferId: string): Promise<ResolveView> {
      await order.getTransfer({ transferId });
      return exclusive<DisputeData, ResolveView>('dispute', transferId, principal.userId, 'check', {
        action: 'resolve',
      });
    },

    async reverse(principal: Principal, transferId: string): Promise<ReverseView> {
      await order.getTransfer({ transferId });
      return exclusive<DisputeData, ReverseView>('dispute', transferId, principal.userId, 'check', {
        action: 'reverse',
      });
    },
  };
}

export type Transfers = ReturnType<typeof createTransfers>;
