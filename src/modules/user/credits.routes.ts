import { randomUUID } from 'node:crypto';
import { AppError } from '../../kernel/errors.js';
import { idempotencyKeyHeader } from '../../kernel/idempotency.js';
import type { Database } from '../../kernel/persistence.js';
import { createApiRouter } from '../../kernel/routing.js';
import { credits, isoDate } from '../../kernel/schemas.js';
import type { Accounts } from './accounts.js';
import type { Ledger } from './ledger.js';
import { CreditTransaction } from './user.entities.js';
import * as s from './user.schemas.js';

/** Balances, the ledger and admin grants. */
export function creditRoutes(db: Database, accounts: Accounts, ledger: Ledger) {
  const api = createApiRouter('user', 'Credits');

  api.route(
    'get',
    '/api/credits/balance',
    { summary: 'Spendable and frozen credits of the caller', access: 'user', response: s.balanceView },
    async ({ principal }) => {
      const user = await accounts.get(principal.userId);
      return {
        user_id: user.id,
        credit_balance: credits(user.creditBalance),
        frozen_credits: credits(user.frozenCredits),
      };
    },
  );

  api.route(
    'get',
    '/api/credits/transactions',
    { summary: 'The caller’s ledger, newest first', access: 'user', paginated: true, response: s.transactionView },
    async ({ principal, page }) => {
      const [rows, total] = await db.em.findAndCount(
        CreditTransaction,
        { userId: principal.userId },
        { orderBy: { createdAt: 'desc', id: 'desc' }, offset: page.offset, limit: page.perPage },
      );
      return {
        items: rows.map((t) => ({
          transaction_id: t.id,
          type: t.type,
          amount: credits(t.amount),
          balance_after: credits(t.balanceAfter),
          reference_id: t.referenceId ?? null,
          created_at: isoDate(t.createdAt),
        })),
        total,
      };
    },
  );

  api.route(
    'post',
    '/api/admin/credits',
    {
      summary: 'Grant credits to a user',
      description:
        'An `Idempotency-Key` header makes a retried grant apply once; the same key with another user or ' +
        'amount answers 409 IDEMPOTENCY_CONFLICT.',
      access: ['admin'],
      body: s.grantBody,
      headers: idempotencyKeyHeader,
      response: s.grantView,
      errors: ['INVALID_UUID', 'USER_NOT_FOUND', 'IDEMPOTENCY_CONFLICT'],
    },
    async ({ body, headers }) => {
      const key = headers['idempotency-key'] ?? randomUUID();
      const entry = await ledger.credit({
        userId: body.user_id,
        amount: body.amount,
        key: `grant:${key}`,
        type: 'GRANT',
        referenceId: body.reason,
      });
      // A replayed key answers with the first grant; it must not pass off that grant as this one.
      if (entry.userId !== body.user_id || entry.amount !== body.amount) {
        throw new AppError('IDEMPOTENCY_CONFLICT', 'This Idempotency-Key was already used for a different grant.');
      }
      return {
        transaction_id: entry.transactionId,
        user_id: entry.userId,
        type: 'GRANT',
        amount: credits(entry.amount),
        credit_balance: credits(entry.balance),
        reference_id: body.reason,
      };
    },
  );

  return api;
}
