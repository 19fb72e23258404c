import type { TestApp } from './app.js';

/** A user's ledger sum and row count beside their balances, read straight from the database. */
export async function ledgerSum(app: TestApp, userId: string) {
  const db = app.kernel.databases.get('user')!;
  const [row] = await db.all<{ total: number | string | null; n: number | string }>(
    `select sum(amount) as total, count(*) as n from ${db.table('credit_transactions')} where user_id = ?`,
    [userId],
  );
  const [user] = await db.all<{ credit_balance: number; frozen_credits: number }>(
    `select credit_balance, frozen_credits from ${db.table('users')} where id = ?`,
    [userId],
  );
  return {
    sum: Number(row.total ?? 0),
    rows: Number(row.n),
    balance: user.credit_balance,
    frozen: user.frozen_credits,
  };
}
