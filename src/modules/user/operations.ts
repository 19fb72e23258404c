import type { Knex } from '@mikro-orm/knex';
import { AppError } from '../../kernel/errors.js';
import type { Database } from '../../kernel/persistence.js';

class Replay extends Error {}

/**
 * At-most-once application of the user port's mutating calls. The key is claimed inside the
 * same transaction as the change; a repeat, even a concurrent one, gets the first result back.
 * A call that throws rolls back its claim too, so a failed call may be retried with its key.
 */
export function createOperations(db: Database) {
  const ops = db.table('operations');

  async function replay<R>(key: string, op: string): Promise<R> {
    const [row] = await db.all<{ op: string; result: string }>(`select op, result from ${ops} where key = ?`, [key]);
    if (!row) throw new Error(`operation ${key} vanished`);
    if (row.op !== op) throw new AppError('IDEMPOTENCY_CONFLICT', `Key "${key}" was already used for ${row.op}.`);
    return JSON.parse(row.result) as R;
  }

  async function once<R>(key: string, op: string, fn: (trx: Knex.Transaction) => Promise<R>): Promise<R> {
    const [prior] = await db.all(`select 1 as hit from ${ops} where key = ?`, [key]);
    if (prior) return replay<R>(key, op);
    try {
      return await db.tx(async (trx) => {
        // On PostgreSQL a concurrent claim of the same key waits here until the first commits.
        const claimed = await db.all(
          `insert into ${ops} (key, op, result, created_at) values (?, ?, '', ?) on conflict (key) do nothing returning key`,
          [key, op, db.time(new Date())],
          trx,
        );
        if (!claimed.length) throw new Replay();
        const result = await fn(trx);
        await db.all(`update ${ops} set result = ? where key = ?`, [JSON.stringify(result), key], trx);
        return result;
      });
    } catch (err) {
      if (err instanceof Replay) return replay<R>(key, op);
      throw err;
    }
  }

  return { once };
}

export type Operations = ReturnType<typeof createOperations>;
