import { randomUUID } from 'node:crypto';
import type { Knex } from '@mikro-orm/knex';
import type { Clock } from '../../kernel/clock.js';
import type { Config } from '../../kernel/config.js';
import { AppError } from '../../kernel/errors.js';
import type { Idempotency } from '../../kernel/idempotency.js';
import type { Logger } from '../../kernel/logger.js';
import type { Outbox } from '../../kernel/outbox.js';
import type { Database } from '../../kernel/persistence.js';
import { isoDate } from '../../kernel/schemas.js';
import { createCodeHasher, createOtpProvider, type OtpMessage } from './otp.providers.js';
import type { OtpPurpose, OtpSent } from './user.port.js';

/** Wrong codes allowed per (user, purpose, reference), counted across re-sent codes. */
const MAX_FAILURES = 3;

type Refusal = 'OTP_INVALID' | 'OTP_EXPIRED' | 'OTP_MAX_RETRIES';
/**
 * A verification's answer is returned rather than thrown: `once` rolls back whatever throws, and
 * a wrong code's failure count must be committed and replayed to a repeat of its key.
 */
type Outcome = { verified: true } | { verified: false; code: Refusal; message: string };

interface Challenge {
  userId: string;
  purpose: OtpPurpose;
  referenceId: string;
}

interface ChallengeRow {
  id: string;
  code_hash: string | null;
  provider_sid: string | null;
  expires_at: unknown;
  failures: number;
}

const refuse = (code: Refusal, message: string): Outcome => ({ verified: false, code, message });
const EXHAUSTED = 'Too many wrong codes; this verification is cancelled.';

function counted(failures: number | undefined): Outcome {
  if (failures === undefined || failures >= MAX_FAILURES) return refuse('OTP_MAX_RETRIES', EXHAUSTED);
  const left = MAX_FAILURES - failures;
  return refuse('OTP_INVALID', `The code is wrong; ${left} ${left === 1 ? 'try' : 'tries'} left.`);
}

/** A provider's approval of a code, asked outside any transaction: for the challenge's sid at that time. */
type Approval = { sid: string; approved: boolean } | undefined;

const OTP_TOPIC = 'otp';

/**
 * One-time passwords: one live code per (user, purpose, reference), stored only as a hash or a
 * provider id. Nothing here waits on a provider inside a transaction: a code is recorded and
 * committed with its delivery in the outbox, and a provider's verdict is asked before the
 * transaction that counts it.
 */
export function createOtp(
  db: Database,
  config: Config,
  log: Logger,
  { once }: Idempotency,
  outbox: Outbox,
  clock: Clock,
) {
  const hasher = createCodeHasher(config.jwtSecret);
  const provider = createOtpProvider(config, log, hasher);
  const challenges = db.table('otp_challenges');
  const users = db.table('users');
  // PostgreSQL: attempts on one challenge queue behind each other instead of both asking the provider.
  const lock = db.dialect === 'postgresql' ? ' for update' : '';

  async function find(trx: Knex.Transaction, c: Challenge): Promise<ChallengeRow | undefined> {
    const [row] = await db.all<ChallengeRow>(
      `select id, code_hash, provider_sid, expires_at, failures from ${challenges} where user_id = ? and purpose = ? and reference_id = ?${lock}`,
      [c.userId, c.purpose, c.referenceId],
      trx,
    );
    return row;
  }

  /** One wrong code. Conditional, so that concurrent attempts cannot count past the limit. */
  async function fail(trx: Knex.Transaction, id: string): Promise<Outcome> {
    const [row] = await db.all<{ failures: number }>(
      `update ${challenges} set failures = failures + 1, updated_at = ? where id = ? and failures < ? returning failures`,
      [db.time(clock.now()), id, MAX_FAILURES],
      trx,
    );
    return counted(row?.failures);
  }

  /** A guess before any code was sent spends the budget too, so that guessing early gains nothing. */
  async function failUnsent(trx: Knex.Transaction, c: Challenge): Promise<Outcome | undefined> {
    const now = db.time(clock.now());
    const [row] = await db.all<{ failures: number }>(
      `insert into ${challenges} (id, user_id, purpose, reference_id, code_hash, provider_sid, expires_at, failures, verified_at, created_at, updated_at) values (:id, :userId, :purpose, :referenceId, null, null, :now, 1, null, :now, :now) on conflict (user_id, purpose, reference_id) do nothing returning failures`,
      { id: randomUUID(), userId: c.userId, purpose: c.purpose, referenceId: c.referenceId, now },
      trx,
    );
    return row ? counted(row.failures) : undefined;
  }

  /** Once a provider has approved a code its hash is kept, so that repeats are checked here without asking again. */
  function isRight(row: ChallengeRow, c: Challenge, code: string, approval: Approval): boolean {
    if (row.code_hash) return hasher.matches(c, code, row.code_hash);
    return !!row.provider_sid && approval?.sid === row.provider_sid && approval.approved;
  }

  /** Asks the provider about a code it keeps, before any transaction: a slow provider holds up no one else. */
  async function askProvider(c: Challenge, code: string): Promise<Approval> {
    if (!provider.verify) return undefined;
    const [row] = await db.all<ChallengeRow>(
      `select code_hash, provider_sid, failures, expires_at from ${challenges} where user_id = ? and purpose = ? and reference_id = ?`,
      [c.userId, c.purpose, c.referenceId],
    );
    const live = row && !row.code_hash && row.provider_sid && row.failures < MAX_FAILURES;
    if (!live || db.date(row.expires_at).getTime() <= clock.now()) return undefined;
    return { sid: row.provider_sid as string, approved: await provider.verify(row.provider_sid as string, code) };
  }

  async function attempt(trx: Knex.Transaction, c: Challenge, code: string, approval: Approval): Promise<Outcome> {
    const row = await find(trx, c);
    // Undefined only when a concurrent call created the row first; it is there on the second look.
    if (!row) return (await failUnsent(trx, c)) ?? attempt(trx, c, code, approval);
    if (row.failures >= MAX_FAILURES) return refuse('OTP_MAX_RETRIES', EXHAUSTED);
    if (!row.code_hash && !row.provider_sid) return fail(trx, row.id);
    if (db.date(row.expires_at).getTime() <= clock.now()) {
      return refuse('OTP_EXPIRED', 'The code has expired; ask for a new one.');
    }
    if (!isRight(row, c, code, approval)) return fail(trx, row.id);
    const now = db.time(clock.now());
    const [ok] = await db.all(
      `update ${challenges} set verified_at = coalesce(verified_at, :now), code_hash = coalesce(code_hash, :codeHash), updated_at = :now where id = :id and failures < :max returning id`,
      { now, codeHash: hasher.hash(c, code), id: row.id, max: MAX_FAILURES },
      trx,
    );
    return ok ? { verified: true } : refuse('OTP_MAX_RETRIES', EXHAUSTED);
  }

  /** The outbox delivers; a provider that keeps the code hands back its id for it, kept for this very send. */
  outbox.handle(OTP_TOPIC, async (m: OtpMessage & { challengeId: string }) => {
    const { providerSid } = await provider.deliver(m);
    if (!providerSid) return;
    await db.all(`update ${challenges} set provider_sid = ? where id = ? and expires_at = ? and code_hash is null`, [
      providerSid,
      m.challengeId,
      db.time(new Date(m.expiresAt)),
    ]);
  });

  return {
    async send(a: Challenge & { key: string }): Promise<OtpSent> {
      const sent = await once(a.key, 'OTP_SEND', async (trx) => {
        const [user] = await db.all<{ phone: string }>(`select phone from ${users} where id = ?`, [a.userId], trx);
        if (!user) throw new AppError('USER_NOT_FOUND', 'No such user.');
        if (((await find(trx, a))?.failures ?? 0) >= MAX_FAILURES) throw new AppError('OTP_MAX_RETRIES', EXHAUSTED);
        const now = clock.now();
        const expiresAt = now + config.otpTtlSeconds * 1000;
        const { code, codeHash } = provider.issue(a);
        // Re-sending replaces the code and its expiry but keeps the failure count.
        const [stored] = await db.all<{ id: string }>(
          `insert into ${challenges} as c (id, user_id, purpose, reference_id, code_hash, provider_sid, expires_at, failures, verified_at, created_at, updated_at) values (:id, :userId, :purpose, :referenceId, :codeHash, null, :expiresAt, 0, null, :now, :now) on conflict (user_id, purpose, reference_id) do update set code_hash = excluded.code_hash, provider_sid = null, expires_at = excluded.expires_at, verified_at = null, updated_at = excluded.updated_at where c.failures < :max returning id`,
          {
            id: randomUUID(),
            userId: a.userId,
            purpose: a.purpose,
            referenceId: a.referenceId,
            codeHash,
            expiresAt: db.time(expiresAt),
            now: db.time(now),
            max: MAX_FAILURES,
          },
          trx,
        );
        if (!stored) throw new AppError('OTP_MAX_RETRIES', EXHAUSTED);
        const message: OtpMessage & { challengeId: string } = {
          challengeId: stored.id,
          userId: a.userId,
          phone: user.phone,
          purpose: a.purpose,
          referenceId: a.referenceId,
          expiresAt: isoDate(expiresAt),
          ...(code ? { code } : {}),
        };
        await outbox.put(trx, OTP_TOPIC, message, { expiresAt });
        return { userId: a.userId, purpose: a.purpose, referenceId: a.referenceId, expiresAt: isoDate(expiresAt) };
      });
      outbox.kick();
      return sent;
    },

    async verify(a: Challenge & { code: string; key: string }): Promise<{ verified: true }> {
      const approval = await askProvider(a, a.code);
      const outcome = await once<Outcome>(a.key, 'OTP_VERIFY', (trx) => attempt(trx, a, a.code, approval));
      if (!outcome.verified) throw new AppError(outcome.code, outcome.message);
      return { verified: true };
    },
  };
}
