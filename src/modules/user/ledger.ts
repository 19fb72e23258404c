import type { Knex } from '@mikro-orm/knex';
import { v7 as uuidv7 } from 'uuid';
import { AppError } from '../../kernel/errors.js';
import type { Idempotency } from '../../kernel/idempotency.js';
import type { Database } from '../../kernel/persistence.js';
import type { LedgerType } from './user.entities.js';
import type { FreezeResult, LedgerResult, MoveResult, UserPort } from './user.port.js';

type Args<M extends keyof UserPort> = Parameters<UserPort[M]>[0];

interface Balances {
  credit_balance: number;
  frozen_credits: number;
}

/**
 * The credits ledger. Each change is one conditional UPDATE of the balance plus one ledger row in
 * the same transaction, applied once per idempotency key.
 */
export function createLedger(db: Database, { once }: Idempotency) {
  const users = db.table('users');
  const ledger = db.table('credit_transactions');
  const pg = db.dialect === 'postgresql';

  async function missingUser(userId: string, trx: Knex.Transaction): Promise<never> {
    const [found] = await db.all(`select 1 as hit from ${users} where id = ?`, [userId], trx);
    if (!found) throw new AppError('USER_NOT_FOUND', 'No such user.');
    throw new AppError('INSUFFICIENT_CREDITS', 'Not enough credits.');
  }

  async function record(
    trx: Knex.Transaction,
    entry: { userId: string; type: LedgerType; amount: number; key: string; referenceId?: string },
    after: Balances,
  ): Promise<LedgerResult> {
    // Time-ordered ids keep "newest first" exact for entries written in the same millisecond.
    const id = uuidv7();
    const balance = after.credit_balance + after.frozen_credits;
    await db.all(
      `insert into ${ledger} (id, user_id, type, amount, balance_after, reference_id, idempotency_key, created_at)
       values (:id, :userId, :type, :amount, :balance, :referenceId, :key, :now)`,
      {
        id,
        userId: entry.userId,
        type: entry.type,
        amount: entry.amount,
        balance,
        referenceId: entry.referenceId ?? null,
        key: entry.key,
        now: db.time(new Date()),
      },
      trx,
    );
    return { transactionId: id, userId: entry.userId, amount: entry.amount, balance: after.credit_balance };
  }

  /** Adds (amount > 0) or takes (amount < 0) spendable or frozen credits; never below zero. */
  async function change(
    trx: Knex.Transaction,
    entry: { userId: string; type: LedgerType; amount: number; key: string; referenceId?: string },
    column: 'credit_balance' | 'frozen_credits' = 'credit_balance',
  ): Promise<LedgerResult> {
    const [after] = await db.all<Balances>(
      `update ${users} set ${column} = ${column} + :amount, updated_at = :now
       where id = :userId and ${column} + :amount >= 0 returning credit_balance, frozen_credits`,
      { amount: entry.amount, now: db.time(new Date()), userId: entry.userId },
      trx,
    );
    if (!after) return missingUser(entry.userId, trx);
    return record(trx, entry, after);
  }

  /** Locks both rows in a fixed order so that two opposite moves cannot deadlock (PostgreSQL). */
  async function lockPair(trx: Knex.Transaction, a: string, b: string) {
    if (pg) await db.all(`select id from ${users} where id in (?, ?) order by id for update`, [a, b], trx);
  }

  async function balances(trx: Knex.Transaction, userId: string): Promise<Balances> {
    const [row] = await db.all<Balances>(
      `select credit_balance, frozen_credits from ${users} where id = ?${pg ? ' for update' : ''}`,
      [userId],
      trx,
    );
    if (!row) throw new AppError('USER_NOT_FOUND', 'No such user.');
    return row;
  }

  async function shift(trx: Knex.Transaction, userId: string, toFrozen: number): Promise<Balances> {
    const [after] = await db.all<Balances>(
      `update ${users} set credit_balance = credit_balance - :toFrozen, frozen_credits = frozen_credits + :toFrozen,
       updated_at = :now where id = :userId and credit_balance - :toFrozen >= 0 and frozen_credits + :toFrozen >= 0
       returning credit_balance, frozen_credits`,
      { toFrozen, now: db.time(new Date()), userId },
      trx,
    );
    if (!after) throw new Error(`credit shift for ${userId} lost its row lock`);
    return after;
  }

  return {
    credit: (a: { userId: string; amount: number; key: string; type: LedgerType; referenceId?: string }) =>
      once(a.key, a.type, (trx) => change(trx, { ...a, amount: Math.abs(a.amount) })),
    debit: (a: Args<'debit'>) =>
      once(a.key, 'PURCHASE', (trx) => change(trx, { ...a, type: 'PURCHASE', amount: -Math.abs(a.amount) })),
    move: (a: Args<'moveCredits'>): Promise<MoveResult> =>
      once(a.key, 'MOVE', async (trx) => {
        if (a.fromUserId === a.toUserId) throw new AppError('SELF_TRANSFER', 'Payer and payee are the same user.');
        await lockPair(trx, a.fromUserId, a.toUserId);
        const frozen = a.source === 'frozen';
        const [outType, inType]: LedgerType[] = frozen ? ['REVERSAL', 'REVERSAL'] : ['TRANSFER_OUT', 'TRANSFER_IN'];
        const base = { amount: a.amount, referenceId: a.referenceId };
        const debit = await change(
          trx,
          { ...base, userId: a.fromUserId, type: outType, amount: -a.amount, key: `${a.key}:out` },
          frozen ? 'frozen_credits' : 'credit_balance',
        );
        const credit = await change(trx, { ...base, userId: a.toUserId, type: inType, key: `${a.key}:in` });
        return { debit, credit };
      }),
    freeze: (a: Args<'freezeCredits'>): Promise<FreezeResult> =>
      once(a.key, 'FREEZE', async (trx) => {
        const now = await balances(trx, a.userId);
        const frozen = Math.min(a.amount, now.credit_balance);
        const after = await shift(trx, a.userId, frozen);
        return { userId: a.userId, frozen, creditBalance: after.credit_balance, frozenCredits: after.frozen_credits };
      }),
    release: (a: Args<'releaseCredits'>): Promise<FreezeResult> =>
      once(a.key, 'RELEASE', async (trx) => {
        const now = await balances(trx, a.userId);
        const released = Math.min(a.amount, now.frozen_credits);
        const after = await shift(trx, a.userId, -released);
        return {
          userId: a.userId,
          frozen: released,
          creditBalance: after.credit_balance,
          frozenCredits: after.frozen_credits,
        };
      }),
  };
}

export type Ledger = ReturnType<typeof createLedger>;
