import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { UserRepository } from './user.repository.js';

export const ROLES = ['customer', 'staff', 'admin'] as const;
export const LEDGER_TYPES = [
  'TOPUP',
  'PURCHASE',
  'REFUND',
  'TRANSFER_IN',
  'TRANSFER_OUT',
  'GRANT',
  'REVERSAL',
] as const;
export type LedgerType = (typeof LEDGER_TYPES)[number];

export const User = defineEntity({
  name: 'User',
  tableName: 'users',
  repository: () => UserRepository,
  checks: [{ name: 'users_credits_not_negative', expression: 'credit_balance >= 0 AND frozen_credits >= 0' }],
  properties: {
    id: p.uuid().primary(),
    email: p.string().length(254).unique(),
    phone: p.string().length(16),
    passwordHash: p.string().length(255),
    fullName: p.string().length(200).nullable(),
    role: p.enum(ROLES as unknown as string[]).default('customer'),
    isFlagged: p.boolean().default(false),
    /** Spendable credits, in cents. */
    creditBalance: p.integer().default(0),
    /** Credits held back by open disputes, in cents; balance + frozen = ledger sum. */
    frozenCredits: p.integer().default(0),
    /** When an admin last changed the role: other slices' session views read recent changes. */
    roleChangedAt: p.datetime().nullable().index('users_role_changed_idx'),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
});
export type User = InferEntity<typeof User>;

/** One row per change of a user's credits; `idempotency_key` makes each change happen once. */
export const CreditTransaction = defineEntity({
  name: 'CreditTransaction',
  tableName: 'credit_transactions',
  // A user's ledger reads newest first.
  indexes: [{ name: 'credit_transactions_user_created_idx', properties: ['userId', 'createdAt'] }],
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    type: p.enum(LEDGER_TYPES as unknown as string[]),
    amount: p.integer(),
    balanceAfter: p.integer(),
    referenceId: p.string().length(200).nullable(),
    idempotencyKey: p.string().length(200).unique(),
    createdAt: p.datetime(),
  },
});
export type CreditTransaction = InferEntity<typeof CreditTransaction>;

/** A login session; logout revokes it, refresh rotates `refresh_jti`. */
export const Session = defineEntity({
  name: 'Session',
  tableName: 'sessions',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid().index(),
    refreshJti: p.uuid(),
    revokedAt: p.datetime().nullable().index('sessions_revoked_idx'),
    expiresAt: p.datetime(),
    createdAt: p.datetime(),
  },
});

/** One live one-time password per (user, purpose, reference); failures count across re-sends. */
export const OtpChallenge = defineEntity({
  name: 'OtpChallenge',
  tableName: 'otp_challenges',
  uniques: [{ name: 'otp_challenges_user_purpose_ref_uq', properties: ['userId', 'purpose', 'referenceId'] }],
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    purpose: p.string().length(40),
    referenceId: p.string().length(200),
    codeHash: p.string().length(128).nullable(),
    providerSid: p.string().length(200).nullable(),
    expiresAt: p.datetime(),
    failures: p.integer().default(0),
    verifiedAt: p.datetime().nullable(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
});

export const PaymentIntent = defineEntity({
  name: 'PaymentIntent',
  tableName: 'payment_intents',
  properties: {
    id: p.string().length(255).primary(),
    userId: p.uuid().index(),
    amount: p.integer(),
    currency: p.string().length(3),
    status: p.string().length(40),
    creditedAt: p.datetime().nullable(),
    createdAt: p.datetime(),
  },
});

export const userEntities = [User, CreditTransaction, Session, OtpChallenge, PaymentIntent];
