import type { Knex } from '@mikro-orm/knex';
import Joi from 'joi';
import type { Clock } from './clock.js';
import { AppError } from './errors.js';
import type { Database } from './persistence.js';

/** Keys are kept at least this long, so that a retry a day later still finds its first answer. */
export const KEY_RETENTION_MS = 24 * 60 * 60 * 1000;

/** The one schema of the `Idempotency-Key` request header, for every route that takes it. */
export const idempotencyKeyHeader = Joi.object({
  'idempotency-key': Joi.string()
    .pattern(/^[A-Za-z0-9._:-]{1,100}$/)
    .messages({
      'string.pattern.base': 'Idempotency-Key must be 1-100 letters, digits, dots, colons, dashes or underscores',
    })
    .description('Makes a retried request apply once; a repeat answers with the first result.'),
});

export interface Idempotency {
  /**
   * Applies `fn` at most once per key, inside the transaction that records the key; a repeat,
   * even a concurrent one, gets the first result back. The same key used for another operation
   * answers 409 IDEMPOTENCY_CONFLICT. A call that throws rolls back its claim too, so that a
   * failed call may be retried with its key.
   */
  once<R>(key: string, op: string, fn: (trx: Knex.Transaction) => Promise<R>): Promise<R>;
  /**
   * For a write that is one statement (PostgreSQL): the WITH part that records the key for each
   * row of the CTE `source`, with `result` (an SQL text expression over that row) as its stored
   * answer. Binds `:key`, `:op` and `:now`. There is no claim first: a concurrent repeat waits for
   * the first on the key's index and then fails with a unique violation, which rolls its whole
   * statement back (`isRepeat`); a repeat after the first committed does the same. `replayed`
   * answers for either, and for a statement that wrote nothing.
   */
  claimWith(source: string, result: string): string;
  /** Whether a statement failed because its key was applied already (see claimWith). */
  isRepeat(err: unknown): boolean;
  /** The first answer under the key, or undefined when the key was never applied. */
  replayed<R>(key: string, op: string): Promise<R | undefined>;
  /** Deletes keys older than the retention; answers how many. */
  purge(): Promise<number>;
}

class Replay extends Error {}

export function createIdempotency(db: Database, clock: Clock): Idempotency {
  const keys = db.table('idempotency_keys');

  async function replayed<R>(key: string, op: string): Promise<R | undefined> {
    const [row] = await db.all<{ op: string; result: string }>(`select op, result from ${keys} where key = ?`, [key]);
    if (!row) return undefined;
    if (row.op !== op) throw new AppError('IDEMPOTENCY_CONFLICT', `Key "${key}" was already used for ${row.op}.`);
    return JSON.parse(row.result) as R;
  }

  async function replay<R>(key: string, op: string): Promise<R> {
    const found = await replayed<R>(key, op);
    if (found === undefined) throw new Error(`idempotency key ${key} vanished`);
    return found;
  }

  return {
    async once(key, op, fn) {
      // No read first: every debit of a sale is a first call, and the claim itself finds a repeat.
      try {
        return await db.tx(async (trx) => {
          // On PostgreSQL a concurrent claim of the same key waits here until the first commits.
          const claimed = await db.all(
            `insert into ${keys} (key, op, result, created_at) values (?, ?, '', ?) on conflict (key) do nothing returning key`,
            [key, op, db.time(clock.now())],
            trx,
          );
          if (!claimed.length) throw new Replay();
          const result = await fn(trx);
          await db.all(`update ${keys} set result = ? where key = ?`, [JSON.stringify(result ?? null), key], trx);
          return result;
        });
      } catch (err) {
        if (err instanceof Replay) return replay(key, op);
        throw err;
      }
    },

    claimWith: (source, result) =>
      `insert into ${keys} (key, op, result, created_at) select :key::text, :op::text, ${result}, :now::timestamptz from ${source}`,

    isRepeat: (err) => (err as { code?: string; table?: string })?.code === '23505',

    replayed,

    async purge() {
      const rows = await db.all(`delete from ${keys} where created_at < ? returning key`, [
        db.time(clock.now() - KEY_RETENTION_MS),
      ]);
      return rows.length;
    },
  };
}
