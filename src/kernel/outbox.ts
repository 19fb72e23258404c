import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { Knex } from '@mikro-orm/knex';
import type { Clock } from './clock.js';
import { timeOrderedId } from './ids.js';
import type { JobDefinition } from './jobs.js';
import type { Logger } from './logger.js';
import type { Database } from './persistence.js';

/** How long a claimed message is left to its deliverer before another may try it (a crash mid-delivery). */
const CLAIM_MS = 30_000;
const BATCH = 20;
const backoffMs = (attempts: number) => Math.min(60_000, 1000 * 2 ** Math.max(0, attempts - 1));

export type OutboxHandler = (payload: never) => Promise<void>;

export interface Outbox {
  /** Records a message in the caller's transaction: it is sent only if that transaction commits. */
  put(trx: Knex.Transaction, topic: string, payload: object, options?: { expiresAt?: number }): Promise<void>;
  handle(topic: string, handler: OutboxHandler): void;
  /** One delivery pass over the messages that are due; answers how many were delivered. */
  deliver(): Promise<number>;
  /**
   * A delivery pass now, beside any under way, rather than at the next tick (after a commit):
   * a message that hangs its provider holds up no other.
   */
  kick(): void;
  job: JobDefinition;
}

interface Row {
  id: string;
  topic: string;
  payload: string;
  attempts: number;
  expires_at: unknown;
}

/**
 * The transactional outbox: work that must not run inside a database transaction (a webhook, an
 * SMS gateway) is recorded with the change that needs it, committed, then delivered by a job
 * with retries and backoff. Any process may deliver: each message is claimed by one conditional
 * update. Payloads are sealed (AES-256-GCM), as they may carry secrets such as one-time codes.
 */
export function createOutbox(
  db: Database,
  options: { clock: Clock; log: Logger; secret: string; intervalMs: number },
): Outbox {
  const { clock, log } = options;
  const outbox = db.table('outbox');
  const handlers = new Map<string, OutboxHandler>();
  const kicked = new Set<Promise<unknown>>();
  const key = createHmac('sha256', options.secret).update('ticketremaster:outbox').digest();

  const seal = (payload: object) => {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const body = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
    return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
  };
  const open = (sealed: string) => {
    const raw = Buffer.from(sealed, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return JSON.parse(Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString());
  };

  async function claim(id: string, now: number): Promise<Row | undefined> {
    const [row] = await db.all<Row>(
      `update ${outbox} set attempts = attempts + 1, next_attempt_at = ? where id = ? and next_attempt_at <= ?
       returning id, topic, payload, attempts, expires_at`,
      [db.time(now + CLAIM_MS), id, db.time(now)],
    );
    return row;
  }

  async function deliverOne(row: Row, now: number): Promise<boolean> {
    const handler = handlers.get(row.topic) as OutboxHandler;
    if (row.expires_at !== null && db.date(row.expires_at).getTime() <= now) {
      log.warn({ topic: row.topic, attempts: row.attempts - 1 }, 'outbox message expired undelivered');
      await db.all(`delete from ${outbox} where id = ?`, [row.id]);
      return false;
    }
    try {
      await handler(open(row.payload) as never);
      await db.all(`delete from ${outbox} where id = ?`, [row.id]);
      return true;
    } catch (err) {
      const retryIn = backoffMs(row.attempts);
      log.warn({ err, topic: row.topic, attempts: row.attempts, retry_in_ms: retryIn }, 'outbox delivery failed');
      await db.all(`update ${outbox} set next_attempt_at = ?, last_error = ? where id = ?`, [
        db.time(clock.now() + retryIn),
        String((err as Error)?.message ?? err).slice(0, 500),
        row.id,
      ]);
      return false;
    }
  }

  const box: Outbox = {
    async put(trx, topic, payload, { expiresAt } = {}) {
      const now = db.time(clock.now());
      await db.all(
        `insert into ${outbox} (id, topic, payload, attempts, next_attempt_at, expires_at, created_at) values (?, ?, ?, 0, ?, ?, ?)`,
        [timeOrderedId(), topic, seal(payload), now, expiresAt === undefined ? null : db.time(expiresAt), now],
        trx,
      );
    },
    handle(topic, handler) {
      if (handlers.has(topic)) throw new Error(`Outbox topic "${topic}" has two handlers`);
      handlers.set(topic, handler);
    },
    async deliver() {
      // Only the topics handled here: a process of another version leaves the others alone.
      const topics = [...handlers.keys()];
      if (!topics.length) return 0;
      const now = clock.now();
      const due = await db.all<{ id: string }>(
        `select id from ${outbox} where next_attempt_at <= ? and topic in (${topics.map(() => '?').join(', ')})
         order by next_attempt_at limit ${BATCH}`,
        [db.time(now), ...topics],
      );
      const claimed = (await Promise.all(due.map((r) => claim(r.id, now)))).filter((r): r is Row => !!r);
      const results = await Promise.all(claimed.map((row) => deliverOne(row, now)));
      return results.filter(Boolean).length;
    },
    kick() {
      const pass = box.deliver().catch((err) => log.error({ err }, 'outbox delivery pass failed'));
      kicked.add(pass);
      void pass.finally(() => kicked.delete(pass));
    },
    // A tick also waits for the passes kicked before it, so that when it ends every due message was tried.
    job: {
      name: 'outbox',
      intervalMs: options.intervalMs,
      run: async () => {
        await Promise.allSettled([...kicked]);
        return box.deliver();
      },
    },
  };
  return box;
}
