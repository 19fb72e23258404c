import Joi from 'joi';
import type { Role } from '../../kernel/auth.js';
import { type PortDefinition, portMethods } from '../../kernel/ports.js';
import { uuid } from '../../kernel/schemas.js';
import type { SessionChanges } from '../../kernel/sessions.js';

export type { SessionChanges };

/** Amounts are integer cents. Timestamps are ISO strings, so both adapters return the same JSON. */
export interface UserDto {
  userId: string;
  email: string;
  phone: string;
  fullName: string | null;
  role: Role;
  isFlagged: boolean;
  creditBalance: number;
  frozenCredits: number;
  createdAt: string;
}

export interface LedgerResult {
  transactionId: string;
  userId: string;
  amount: number;
  balance: number;
}

export interface MoveResult {
  debit: LedgerResult;
  credit: LedgerResult;
}

export interface FreezeResult {
  userId: string;
  frozen: number;
  creditBalance: number;
  frozenCredits: number;
}

export type OtpPurpose = 'purchase' | 'transfer';

export interface OtpSent {
  userId: string;
  purpose: OtpPurpose;
  referenceId: string;
  expiresAt: string;
}

/**
 * What other modules may ask of the user module. Every mutating call carries an idempotency
 * `key` and is applied at most once: a repeat answers with the first result. A call that fails
 * (e.g. INSUFFICIENT_CREDITS) applies nothing and records nothing, so it may be retried.
 */
export interface UserPort {
  getUser(args: { userId: string }): Promise<UserDto>;
  getRiskFlag(args: { userId: string }): Promise<{ userId: string; isFlagged: boolean }>;
  isSessionActive(args: { sid: string; userId: string }): Promise<{ active: boolean; role?: Role }>;
  /**
   * The sessions revoked and the roles changed since `since` (a little before it: the answers
   * overlap), for a slice that keeps a view of sessions instead of asking per request; `at` is
   * where to ask from next. Without `since`: everything an access token alive now could meet.
   */
  sessionChanges(args: { since: string | null }): Promise<SessionChanges>;
  debit(args: { userId: string; amount: number; key: string; referenceId?: string }): Promise<LedgerResult>;
  refund(args: { userId: string; amount: number; key: string; referenceId?: string }): Promise<LedgerResult>;
  /** Moves credits from one user to another in one transaction (TRANSFER_OUT / TRANSFER_IN, or REVERSAL). */
  moveCredits(args: {
    fromUserId: string;
    toUserId: string;
    amount: number;
    key: string;
    referenceId?: string;
    /** `frozen` takes the credits from the payer's frozen credits (reversing a disputed transfer). */
    source?: 'balance' | 'frozen';
    /**
     * `frozen` puts them in the payee's frozen credits, where only a release or a move back can
     * take them (a transfer holds the price there until the seat has changed hands).
     */
    target?: 'balance' | 'frozen';
  }): Promise<MoveResult>;
  /** Freezes up to `amount` of the user's spendable credits; answers how much was frozen. */
  freezeCredits(args: { userId: string; amount: number; key: string }): Promise<FreezeResult>;
  /** Returns up to `amount` of frozen credits to spendable. */
  releaseCredits(args: { userId: string; amount: number; key: string }): Promise<FreezeResult>;
  sendOtp(args: { userId: string; purpose: OtpPurpose; referenceId: string; key: string }): Promise<OtpSent>;
  /** Answers `{verified: true}` or throws OTP_INVALID, OTP_EXPIRED or OTP_MAX_RETRIES. */
  verifyOtp(args: {
    userId: string;
    purpose: OtpPurpose;
    referenceId: string;
    code: string;
    key: string;
  }): Promise<{ verified: true }>;
}

const cents = Joi.number().integer().min(1).max(2_000_000_000).required();
const key = Joi.string().min(1).max(160).required();
const ref = Joi.string().min(1).max(160);
const purpose = Joi.string().valid('purchase', 'transfer').required();

export const userPortDefinition: PortDefinition = {
  name: 'user',
  methods: portMethods<UserPort>({
    getUser: Joi.object({ userId: uuid().required() }),
    getRiskFlag: Joi.object({ userId: uuid().required() }),
    isSessionActive: Joi.object({ sid: uuid().required(), userId: uuid().required() }),
    sessionChanges: Joi.object({ since: Joi.string().isoDate().allow(null).required() }),
    debit: Joi.object({ userId: uuid().required(), amount: cents, key, referenceId: ref }),
    refund: Joi.object({ userId: uuid().required(), amount: cents, key, referenceId: ref }),
    moveCredits: Joi.object({
      fromUserId: uuid().required(),
      toUserId: uuid().required(),
      amount: cents,
      key,
      referenceId: ref,
      source: Joi.string().valid('balance', 'frozen'),
      target: Joi.string().valid('balance', 'frozen'),
    }),
    freezeCredits: Joi.object({ userId: uuid().required(), amount: cents, key }),
    releaseCredits: Joi.object({ userId: uuid().required(), amount: cents, key }),
    sendOtp: Joi.object({ userId: uuid().required(), purpose, referenceId: ref.required(), key }),
    verifyOtp: Joi.object({
      userId: uuid().required(),
      purpose,
      referenceId: ref.required(),
      code: Joi.string().min(1).max(12).required(),
      key,
    }),
  }),
};
