import { randomUUID } from 'node:crypto';
import type { Principal } from '../../kernel/auth.js';
import type { Clock } from '../../kernel/clock.js';
import type { Config } from '../../kernel/config.js';
import { AppError } from '../../kernel/errors.js';
import { timeOrderedId } from '../../kernel/ids.js';
import type { Database } from '../../kernel/persistence.js';
import type { RequiredPorts } from '../../kernel/registry.js';
import { credits } from '../../kernel/schemas.js';
import type { OrderHoldDto } from '../event/index.js';
import { liveStatus, type OrderDto } from '../order/index.js';
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

export interface ReserveView {
  order_id: string;
  seat_id: string;
  seat_ids: string[];
  event_id: string;
  status: 'HELD';
  price: number;
  seats: { seat_id: string; row_number: string; seat_number: number; category: string; price: number }[];
  held_until: string;
  ttl_seconds: number;
  message: string;
}

export interface PayView {
  order_id: string;
  seat_id: string;
  seat_ids: string[];
  status: 'CONFIRMED';
  credits_charged: number;
  remaining_balance: number;
  message: string;
}

interface ReserveData {
  seatIds: string[];
  ttlSeconds: number;
  holdLimit: number;
  hold?: OrderHoldDto;
  error?: Outcome<never>;
}

interface PayData {
  total: number;
  /** When the order's hold ends: a seat lost after it was lost to the expiry. */
  expiresAt: string;
  seats: { seatId: string; price: number }[];
  balance?: number;
  error?: Outcome<never>;
}

const UNFINISHED: Outcome<never> = {
  ok: false,
  code: 'SERVICE_UNAVAILABLE',
  message: 'A service this purchase needs did not answer; nothing was kept. Try again shortly.',
};

const plural = (n: number) => (n === 1 ? 'seat' : `${n} seats`);

/**
 * Reserve, pay and the purchase OTP. Each is a saga (saga.ts) whose steps call the user, event and
 * order ports with keys derived from the order id, so a retried or recovered step applies once:
 * reserve = hold → create the order (back: release the hold); pay = debit → sell the seats →
 * confirm the order (back from a lost hold: refund, end the order; forward once the seats are sold).
 */
export function createPurchase(ports: Ports, sagas: SagaLog, db: Database, config: Config, clock: Clock) {
  const { user, event, order } = ports;
  const approvals = db.table('purchase_approvals');
  /** How long a request waits for another one's saga on the same order before it answers 503. */
  const waitMs = 3 * config.internalTimeoutMs + 2000;

  const reserveView = (hold: OrderHoldDto): ReserveView => ({
    order_id: hold.orderId,
    seat_id: hold.seats[0].seatId,
    seat_ids: hold.seats.map((s) => s.seatId),
    event_id: hold.eventId,
    status: 'HELD',
    price: credits(hold.total),
    seats: hold.seats.map((s) => ({
      seat_id: s.seatId,
      row_number: s.rowNumber,
      seat_number: s.seatNumber,
      category: s.category,
      price: credits(s.price),
    })),
    held_until: hold.heldUntil,
    ttl_seconds: config.holdTtlSeconds,
    message: `${plural(hold.seats.length)} held for you until ${hold.heldUntil}; pay before then to keep ${hold.seats.length === 1 ? 'it' : 'them'}.`,
  });

  const reserveFlow: SagaFlow<ReserveData, ReserveView> = {
    kind: 'reserve',
    steps: {
      async hold(run) {
        let hold: OrderHoldDto;
        try {
          hold = await withRetry(() =>
            event.holdSeats({
              seatIds: run.data.seatIds,
              userId: run.userId,
              orderId: run.orderId,
              ttlSeconds: run.data.ttlSeconds,
              holdLimit: run.data.holdLimit,
            }),
          );
        } catch (err) {
          if (isRefusal(err)) return { end: 'FAILED', outcome: refusalOf(err) };
          throw err;
        }
        if (hold.orderId === run.orderId) return { next: 'order', data: { hold } };
        // The caller's own live order of exactly these seats: a repeated reserve gets that order.
        const existing = await order.getOrder({ orderId: hold.orderId }).catch((err) => {
          if (isRefusal(err)) return undefined;
          throw err;
        });
        if (!existing) {
          const busy = new AppError('SEAT_UNAVAILABLE', 'These seats are being reserved by another of your requests.');
          return { end: 'FAILED', outcome: refusalOf(busy) };
        }
        return { end: 'DONE', outcome: { ok: true, data: reserveView(hold) } };
      },
      async order(run) {
        const hold = run.data.hold as OrderHoldDto;
        try {
          await withRetry(() =>
            order.createOrder({
              orderId: run.orderId,
              userId: run.userId,
              eventId: hold.eventId,
              seats: hold.seats.map((s) => ({ seatId: s.seatId, price: s.price })),
              expiresAt: hold.heldUntil,
            }),
          );
        } catch (err) {
          return { next: 'release', data: { error: isRefusal(err) ? refusalOf(err) : UNFINISHED } };
        }
        return { end: 'DONE', outcome: { ok: true, data: reserveView(hold) } };
      },
      async release(run) {
        await withRetry(() => event.releaseOrder({ orderId: run.orderId }));
        // The order may exist (its creation's outcome was unknown): it must not stay PENDING.
        await withRetry(() => order.endOrder({ orderId: run.orderId, status: 'FAILED' })).catch((err) => {
          if (!(isRefusal(err) && err.code === 'ORDER_NOT_FOUND')) throw err;
        });
        return { end: 'COMPENSATED', outcome: run.data.error ?? UNFINISHED };
      },
    },
    // Nobody got the answer of a reserve cut short: it is undone.
    resume: () => 'release',
  };

  const payView = (run: { orderId: string; data: PayData }): PayView => ({
    order_id: run.orderId,
    seat_id: run.data.seats[0].seatId,
    seat_ids: run.data.seats.map((s) => s.seatId),
    status: 'CONFIRMED',
    credits_charged: credits(run.data.total),
    remaining_balance: credits(run.data.balance ?? 0),
    message: `Paid: ${plural(run.data.seats.length)} ${run.data.seats.length === 1 ? 'is' : 'are'} yours.`,
  });

  const payFlow: SagaFlow<PayData, PayView> = {
    kind: 'pay',
    steps: {
      async debit(run) {
        const debit = await refusedOr(() =>
          user.debit({
            userId: run.userId,
            amount: run.data.total,
            key: `order:${run.orderId}:debit`,
            referenceId: run.orderId,
          }),
        );
        // Insufficient credits: nothing was charged and the seats stay held until their TTL.
        if ('refused' in debit) return { end: 'FAILED', outcome: refusalOf(debit.refused) };
        return { next: 'seats', data: { balance: debit.ok.balance } };
      },
      async seats(run) {
        try {
          await withRetry(() =>
            event.confirmOrder({
              orderId: run.orderId,
              userId: run.userId,
              seats: run.data.seats.map((s) => ({ seatId: s.seatId, pricePaid: s.price })),
            }),
          );
          return { next: 'order' };
        } catch (err) {
          if (!isRefusal(err)) throw err;
          // Swept after its expiry, a hold reads as never held: the client hears that it expired.
          const expired = err.code === 'SEAT_NOT_HELD' && Date.parse(run.data.expiresAt) <= clock.now();
          const error = expired
            ? new AppError(
                'HOLD_EXPIRED',
                'The hold on these seats expired before the payment went through; nothing was charged.',
              )
            : err;
          return { next: 'refund', data: { error: refusalOf(error) } };
        }
      },
      async order(run) {
        // The seats are sold and paid for: this step only goes forward, retried until it succeeds.
        await withRetry(() => order.confirmOrder({ orderId: run.orderId }), 5);
        return { end: 'DONE', outcome: { ok: true, data: payView(run) } };
      },
      async refund(run) {
        // A confirm sent before the refusal (a first attempt that timed out, or one from a crashed
        // instance) can still land after it: another event instance's clock, or a long wait for
        // a connection, may judge the hold live. The order is given up first, so that none can
        // land any more; if one already sold the seats, the order goes forward instead.
        const seatIds = run.data.seats.map((s) => s.seatId);
        const given = await withRetry(() => event.abandonOrder({ orderId: run.orderId, seatIds }));
        if (given.sold === seatIds.length) return { next: 'order', data: { error: undefined } };
        // A confirm sells all or none: a part sold is a broken invariant, never refunded over.
        if (given.sold > 0) throw new Error(`order ${run.orderId}: ${given.sold} of ${seatIds.length} seats sold`);
        const refund = await withRetry(() =>
          user.refund({
            userId: run.userId,
            amount: run.data.total,
            key: `order:${run.orderId}:refund`,
            referenceId: run.orderId,
          }),
        );
        return { next: 'end', data: { balance: refund.balance } };
      },
      async end(run) {
        const error = run.data.error ?? UNFINISHED;
        const status = !error.ok && error.code === 'HOLD_EXPIRED' ? 'EXPIRED' : 'FAILED';
        await withRetry(() => order.endOrder({ orderId: run.orderId, status }));
        return { end: 'COMPENSATED', outcome: error };
      },
    },
    // Every step is keyed or repeatable: recovery re-runs the recorded one and goes on.
    resume: (step) => step,
  };

  const cancelFlow: SagaFlow<Record<string, never>, { cancelled: true }> = {
    kind: 'cancel',
    steps: {
      async end(run) {
        await withRetry(() => order.endOrder({ orderId: run.orderId, status: 'FAILED' }));
        return { next: 'release' };
      },
      async release(run) {
        await withRetry(() => event.releaseOrder({ orderId: run.orderId }));
        return { end: 'DONE', outcome: { ok: true, data: { cancelled: true } } };
      },
    },
    resume: (step) => step,
  };

  sagas.register(reserveFlow);
  sagas.register(payFlow);
  sagas.register(cancelFlow);

  /** The caller's order; someone else's is answered as if it did not exist. */
  async function ownOrder(principal: Principal, orderId: string): Promise<OrderDto> {
    const found = await order.getOrder({ orderId });
    if (found.userId !== principal.userId) throw new AppError('ORDER_NOT_FOUND', 'No such order.');
    return found;
  }

  /** Why an order cannot be paid now, if it cannot. */
  function unpayable(o: OrderDto): AppError | undefined {
    const status = liveStatus(o, clock.now());
    if (status === 'CONFIRMED' || status === 'REFUNDED') {
      return new AppError('ORDER_ALREADY_CONFIRMED', 'This order is already paid.');
    }
    if (status === 'EXPIRED') {
      return new AppError('HOLD_EXPIRED', 'The hold on these seats has expired; reserve them again.');
    }
    if (status === 'FAILED')
      return new AppError('SEAT_NOT_HELD', 'This order was cancelled; its seats are no longer held.');
    return undefined;
  }

  /** Ends a PENDING order FAILED and releases its seats (a sold order is left as it is). */
  async function cancel(o: OrderDto) {
    await sagas.start({ kind: 'cancel', orderId: o.orderId, userId: o.userId, step: 'end', data: {} });
  }

  async function approved(orderId: string): Promise<boolean> {
    const [row] = await db.all(`select 1 as hit from ${approvals} where order_id = ?`, [orderId]);
    return !!row;
  }

  return {
    async reserve(
      principal: Principal,
      body: { seat_id?: string; seat_ids?: string[]; user_id?: string },
    ): Promise<ReserveView> {
      const seatIds = body.seat_ids ?? [body.seat_id as string];
      const userId = body.user_id ?? principal.userId;
      if (userId !== principal.userId) {
        if (principal.role !== 'admin') throw new AppError('FORBIDDEN', 'You can only reserve seats for yourself.');
        await user.getUser({ userId });
      }
      const started = await sagas.start<ReserveData, ReserveView>({
        kind: 'reserve',
        orderId: timeOrderedId(),
        userId,
        step: 'hold',
        data: { seatIds, ttlSeconds: config.holdTtlSeconds, holdLimit: config.maxHeldSeatsPerUser },
      });
      if (!('outcome' in started)) throw new Error('a new order id is already taken');
      const { outcome } = started;
      // Refused seats are named as the request named them.
      if (!outcome.ok && body.seat_id && outcome.details) {
        outcome.details = outcome.details.map((d) => ({ ...d, field: d.field.replace(/^seat_ids\[0\]/, 'seat_id') }));
      }
      return settle(outcome);
    },

    async pay(principal: Principal, orderId: string, idempotencyKey?: string): Promise<PayView> {
      const requestKey = idempotencyKey ? `pay:${principal.userId}:${idempotencyKey}` : undefined;
      for (let round = 0; round < 5; round++) {
        if (requestKey) {
          const prior = await sagas.byKey(requestKey);
          if (prior) {
            if (prior.order_id !== orderId) {
              throw new AppError('IDEMPOTENCY_CONFLICT', 'This Idempotency-Key was already used for another order.');
            }
            return settle(await sagas.awaitSaga<PayView>(prior.id, waitMs));
          }
        }
        // The flag is the caller's, and so is the order (ownOrder refuses anyone else's): one round trip.
        const [found, { isFlagged }] = await Promise.all([
          ownOrder(principal, orderId),
          user.getRiskFlag({ userId: principal.userId }),
        ]);
        const refusal = unpayable(found);
        if (refusal) throw refusal;
        if (isFlagged && !(await approved(orderId))) {
          await user.sendOtp({
            userId: found.userId,
            purpose: 'purchase',
            referenceId: orderId,
            key: `order:${orderId}:otp:${randomUUID()}`,
          });
          throw new AppError(
            'OTP_REQUIRED',
            'This purchase needs a one-time password: we have just sent one to your phone. Verify it, then pay again.',
          );
        }
        const started = await sagas.start<PayData, PayView>({
          kind: 'pay',
          orderId,
          userId: found.userId,
          step: 'debit',
          data: { total: found.total, expiresAt: found.expiresAt, seats: found.seats },
          requestKey,
        });
        if ('outcome' in started) return settle(started.outcome);
        // Another pay of this order is under way (or took this key a moment ago): wait for it, then look again.
        const running = await sagas.running(orderId, 'pay');
        if (running && running.request_key !== requestKey) await sagas.awaitSaga(running.id, waitMs);
      }
      throw new SagaTakenOver();
    },

    /** A purchase OTP: right, the order's pay may go on; a third wrong code cancels the order. */
    async verifyOtp(principal: Principal, orderId: string, code: string) {
      const found = await ownOrder(principal, orderId);
      try {
        await user.verifyOtp({
          userId: found.userId,
          purpose: 'purchase',
          referenceId: orderId,
          code,
          key: `order:${orderId}:otp-check:${randomUUID()}`,
        });
      } catch (err) {
        if (isRefusal(err) && err.code === 'OTP_MAX_RETRIES') await cancel(found);
        throw err;
      }
      await db.all(
        `insert into ${approvals} (order_id, user_id, verified_at) values (?, ?, ?) on conflict (order_id) do nothing`,
        [orderId, found.userId, db.time(clock.now())],
      );
      return { verified: true as const, message: 'Code verified; you can pay for this order now.' };
    },
  };
}

export type Purchase = ReturnType<typeof createPurchase>;
