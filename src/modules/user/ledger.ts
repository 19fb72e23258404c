import type { Knex } from '@mikro-orm/knex';
import { AppError } from '../../kernel/errors.js';
import type { Idempotency } from '../../kernel/idempotency.js';
import { timeOrderedId } from '../../kernel/ids.js';
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
export function createLedger(db: Database, idempotency: Idempotency) {
  const { once } = idempotency;
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
    const id = timeOrderedId();
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

  /**
   * PostgreSQL: the whole of `once(key, op, change)` as one statement, one round trip instead of
   * six: the balance UPDATE, its ledger row and the key with its answer, all or nothing (see
   * Idempotency.claimWith). A repeat is rolled back whole by the key's unique index and answered
   * from the key; a statement that changed nothing was refused or is a repeat.
   */
  const CHANGE_ONCE = `with after as (
      update ${users} set credit_balance = credit_balance + :amount, updated_at = :now
      where id = :userId and credit_balance + :amount >= 0 returning credit_balance, frozen_credits
    ), entry as (
      insert into ${ledger} (id, user_id, type, amount, balance_after, reference_id, idempotency_key, created_at)
      select :id::uuid, :userId::uuid, :type::text, :amount::int, credit_balance + frozen_credits, :referenceId::text,
        :key::text, :now::timestamptz from after
    ), claim as (
      ${idempotency.claimWith(
        'after',
        `json_build_object('transactionId', :id::text, 'userId', :userId::text, 'amount', :amount::int, 'balance', credit_balance)::text`,
      )}
    )
    select credit_balance from after`;

  async function changeOnce(op: string, entry: Parameters<typeof change>[1]): Promise<LedgerResult> {
    const id = timeOrderedId();
    const { userId, amount, key } = entry;
    const binds = { id, userId, amount, key, op, type: entry.type, referenceId: entry.referenceId ?? null };
    let rows: Balances[];
    try {
      rows = await db.all<Balances>(CHANGE_ONCE, { ...binds, now: db.time(new Date()) });
    } catch (err) {
      if (!idempotency.isRepeat(err)) throw err;
      rows = [];
    }
    if (rows.length) return { transactionId: id, userId, amount, balance: rows[0].credit_balance };
    const first = await idempotency.replayed<LedgerResult>(key, op);
    if (first !== undefined) return first;
    const [found] = await db.all(`select 1 as hit from ${users} where id = ?`, [userId]);
    if (!found) throw new AppError('USER_NOT_FOUND', 'No such user.');
    throw new AppError('INSUFFICIENT_CREDITS', 'Not enough credits.');
  }

  /** Adds or takes spendable credits once per key: one statement on PostgreSQL, a transaction on SQLite. */
  const changeByKey = (op: string, entry: Parameters<typeof change>[1]) =>
    pg ? changeOnce(op, entry) : once(entry.key, op, (trx) => change(trx, entry));

  return {
    credit: (a: { userId: string; amount: number; key: string; type: LedgerType; referenceId?: string }) =>
      changeByKey(a.type, { ...a, amount: Math.abs(a.amount) }),
    debit: (a: Args<'debit'>) => changeByKey('PURCHASE', { ...a, type: 'PURCHASE', amount: -Math.abs(a.amount) }),
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
        const credit = await change(
          trx,
          { ...base, userId: a.toUserId, type: inType, key: `${a.key}:in` },
          a.target === 'frozen' ? 'frozen_credits' : 'credit_balance',
        );
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
