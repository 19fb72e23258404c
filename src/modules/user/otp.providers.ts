import { createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import type { Config } from '../../kernel/config.js';
import { AppError } from '../../kernel/errors.js';
import type { Logger } from '../../kernel/logger.js';
import type { OtpPurpose } from './user.port.js';

/** A code to deliver, as the outbox keeps it until it is sent. */
export interface OtpMessage {
  userId: string;
  phone: string;
  purpose: OtpPurpose;
  referenceId: string;
  /** ISO time. */
  expiresAt: string;
  /** The code, when it was made here; a provider that makes its own leaves it out. */
  code?: string;
}

type Challenge = Pick<OtpMessage, 'userId' | 'purpose' | 'referenceId'>;

export interface OtpProvider {
  /** In the transaction that records the challenge: the code made here, if any, and its hash. */
  issue(challenge: Challenge): { code: string | null; codeHash: string | null };
  /** After the commit, from the outbox: sends the code; answers the provider's id for it, if it keeps one. */
  deliver(message: OtpMessage): Promise<{ providerSid: string | null }>;
  /** For providers that keep the code themselves: is `code` the one they sent under `sid`? */
  verify?(sid: string, code: string): Promise<boolean>;
}

/**
 * HMAC-SHA256 of a code, bound to its challenge so that a hash copied to another row matches
 * nothing. The key is derived from JWT_SECRET, so six digits cannot be brute-forced from a dump.
 */
export function createCodeHasher(secret: string) {
  const key = createHmac('sha256', secret).update('ticketremaster:otp-code').digest();
  const hash = (c: Challenge, code: string) =>
    createHmac('sha256', key).update(`${c.userId}\n${c.purpose}\n${c.referenceId}\n${code}`).digest('hex');
  return {
    hash,
    matches(c: Challenge, code: string, stored: string) {
      const given = Buffer.from(hash(c, code), 'hex');
      const expected = Buffer.from(stored, 'hex');
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
  };
}

export type CodeHasher = ReturnType<typeof createCodeHasher>;

/** Delivery runs from the outbox and retries, so a slow provider is given up on quickly. */
const PROVIDER_TIMEOUT_MS = 5_000;

async function postJson(url: string, body: unknown, headers: Record<string, string>, log: Logger, what: string) {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
    });
  } catch (err) {
    log.warn({ err }, `${what} failed`);
    throw new AppError('SERVICE_UNAVAILABLE', 'The one-time password service cannot be reached; try again shortly.');
  }
  if (!res.ok) {
    log.warn({ status: res.status }, `${what} was refused`);
    throw new AppError('SERVICE_UNAVAILABLE', 'The one-time password service is unavailable; try again shortly.');
  }
  return (await res.json().catch(() => null)) as Record<string, unknown> | null;
}

/** Six digits made and checked here; delivered to the log (development) or to OTP_WEBHOOK_URL. */
export function localProvider(config: Config, log: Logger, hasher: CodeHasher): OtpProvider {
  return {
    issue(challenge) {
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      return { code, codeHash: hasher.hash(challenge, code) };
    },
    async deliver(m) {
      const message = {
        user_id: m.userId,
        phone: m.phone,
        code: m.code,
        purpose: m.purpose,
        reference_id: m.referenceId,
        expires_at: m.expiresAt,
      };
      if (config.otpDelivery === 'webhook') {
        await postJson(config.otpWebhookUrl, message, {}, log, 'OTP webhook delivery');
      } else {
        log.info(message, 'OTP code (dev delivery OTP_DELIVERY=log: the code is only written here, never sent)');
      }
      return { providerSid: null };
    },
  };
}

/**
 * The SMU-Lab Notification API: `SendOTP {Mobile}` → `{VerificationSid}`, then
 * `VerifyOTP {VerificationSid, Code}` → `{Status: "approved"}` when the code is right.
 * Assumed, as no public reference for it was found: both are `POST {SMU_API_URL}/<operation>`
 * with JSON bodies, and SMU_API_KEY travels in an `X-API-Key` header.
 */
export function smuProvider(config: Config, log: Logger): OtpProvider {
  const base = config.smuApiUrl.replace(/\/+$/, '');
  const headers: Record<string, string> = config.smuApiKey ? { 'x-api-key': config.smuApiKey } : {};
  return {
    issue: () => ({ code: null, codeHash: null }),
    async deliver(m) {
      const reply = await postJson(`${base}/SendOTP`, { Mobile: m.phone }, headers, log, 'SMU SendOTP');
      const sid = reply?.VerificationSid;
      if (typeof sid !== 'string' || !sid) {
        log.warn({ reply }, 'SMU SendOTP answered without a VerificationSid');
        throw new AppError('SERVICE_UNAVAILABLE', 'The one-time password service is unavailable; try again shortly.');
      }
      return { providerSid: sid };
    },
    async verify(sid, code) {
      const reply = await postJson(
        `${base}/VerifyOTP`,
        { VerificationSid: sid, Code: code },
        headers,
        log,
        'SMU VerifyOTP',
      );
      return reply?.Status === 'approved';
    },
  };
}

export function createOtpProvider(config: Config, log: Logger, hasher: CodeHasher): OtpProvider {
  return config.otpProvider === 'smu' ? smuProvider(config, log) : localProvider(config, log, hasher);
}
