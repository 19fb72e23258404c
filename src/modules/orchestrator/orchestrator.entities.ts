import { defineEntity, type InferEntity, p } from '@mikro-orm/core';

export const SAGA_KINDS = ['reserve', 'pay', 'cancel', 'initiate', 'confirm', 'dispute'] as const;
export type SagaKind = (typeof SAGA_KINDS)[number];
export const SAGA_STATUSES = ['RUNNING', 'DONE', 'FAILED', 'COMPENSATED'] as const;
export type SagaStatus = (typeof SAGA_STATUSES)[number];

/**
 * The saga log: one row per saga, its current step rewritten before the step runs (ADR 8). The
 * row is claimed by one runner at a time through `holder` and `lease_until`.
 */
export const Saga = defineEntity({
  name: 'Saga',
  tableName: 'sagas',
  indexes: [
    // One running saga of a kind per order: a second pay of the order waits for the first.
    {
      name: 'sagas_running_order_uq',
      expression: (table, columns, name) =>
        `create unique index ${name} on ${table} (${columns.orderId}, ${columns.kind}) where ${columns.status} = 'RUNNING'`,
    },
    // Recovery looks only at running sagas, by lease.
    {
      name: 'sagas_running_lease_idx',
      expression: (table, columns, name) =>
        `create index ${name} on ${table} (${columns.leaseUntil}) where ${columns.status} = 'RUNNING'`,
    },
  ],
  properties: {
    id: p.uuid().primary(),
    kind: p.enum(SAGA_KINDS as unknown as string[]),
    /** The order the saga works on, or the transfer (initiate, confirm, dispute). */
    orderId: p.uuid(),
    userId: p.uuid(),
    step: p.string().length(20),
    status: p.enum(SAGA_STATUSES as unknown as string[]),
    /** What the steps need and have learnt, as JSON. */
    data: p.text(),
    holder: p.string().length(64),
    leaseUntil: p.datetime(),
    /** The client's Idempotency-Key, scoped to its user and route. */
    requestKey: p.string().length(200).nullable().unique('sagas_request_key_uq'),
    /** The answer of a finished saga, replayed to a repeat of its request key. */
    response: p.text().nullable(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
  },
});
export type Saga = InferEntity<typeof Saga>;

/** An order whose buyer proved their phone with a purchase OTP: its pay may go on. */
export const PurchaseApproval = defineEntity({
  name: 'PurchaseApproval',
  tableName: 'purchase_approvals',
  properties: {
    orderId: p.uuid().primary(),
    userId: p.uuid(),
    verifiedAt: p.datetime(),
  },
});
export type PurchaseApproval = InferEntity<typeof PurchaseApproval>;

/** A party of a transfer who verified their own code (POST /api/verify-otp): confirm may leave it out. */
export const TransferApproval = defineEntity({
  name: 'TransferApproval',
  tableName: 'transfer_approvals',
  properties: {
    transferId: p.uuid().primary(),
    userId: p.uuid().primary(),
    verifiedAt: p.datetime(),
  },
});
export type TransferApproval = InferEntity<typeof TransferApproval>;

export const orchestratorEntities = [Saga, PurchaseApproval, TransferApproval];
