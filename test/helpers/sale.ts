import type { ExecutionContext } from 'ava';
import type { Response, TestApp } from './app.js';
import { checkInvariants } from './purchase.js';
import { grant, newUser, type TestUser } from './users.js';

/**
 * Helpers of the purchase storms (test/purchase/concurrency.test.ts, flash-sale.test.ts): many
 * buyers at once, the answers tallied, and afterwards the invariants checked once the background
 * work has caught up (purchase.ts reads them from the three databases).
 */

/** Maps `items` through `fn`, at most `limit` at a time, keeping their order. */
export async function inParallel<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** `n` fresh customers, logged in, each granted `credits` (none when 0); a few registrations at a time. */
export function newBuyers(app: TestApp, admin: TestUser, n: number, credits: number | ((i: number) => number) = 0) {
  const amount = typeof credits === 'number' ? () => credits : credits;
  return inParallel(
    Array.from({ length: n }, (_, i) => i),
    8,
    async (i) => {
      const user = await newUser(app);
      const credited = amount(i);
      if (credited > 0) await grant(app, admin, user.userId, credited);
      return { ...user, granted: Math.round(credited * 100) };
    },
  );
}

export type Buyer = Awaited<ReturnType<typeof newBuyers>>[number];

/** `200`, or the status and error code of a refusal: `409 SEAT_UNAVAILABLE`. */
export const outcome = (res: Response) =>
  res.status < 300 ? String(res.status) : `${res.status} ${res.body?.error_code}`;

/** How many answers had each outcome. */
export function tally(answers: Response[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of answers) out[outcome(a)] = (out[outcome(a)] ?? 0) + 1;
  return out;
}

/**
 * Saga recovery (after which no saga may be RUNNING), then the invariants of the purchase helpers,
 * which run the sweepers first. Answers what those checked.
 */
export async function checkSale(t: ExecutionContext, app: TestApp, opts: { granted?: number } = {}) {
  await app.kernel.jobs.run('orchestrator', 'saga-recovery');
  const db = app.kernel.databases.get('orchestrator')!;
  const running = await db.all(`select id, kind, step from ${db.table('sagas')} where status = ?`, ['RUNNING']);
  t.deepEqual(running, [], 'no saga is RUNNING after recovery');
  return checkInvariants(t, app, opts);
}

/** Every user's spendable balance and its ledger sum, in cents. */
export async function accountsOf(app: TestApp) {
  const db = app.kernel.databases.get('user')!;
  const rows = await db.all<{ id: string; balance: unknown; ledger: unknown }>(
    `select u.id, u.credit_balance as balance, (select coalesce(sum(c.amount), 0) from ${db.table('credit_transactions')} c
     where c.user_id = u.id) as ledger from ${db.table('users')} u`,
  );
  return new Map(rows.map((r) => [r.id, { balance: Number(r.balance), ledger: Number(r.ledger) }]));
}

/** A user's ledger entry types, sorted, to show what was charged and refunded. */
export async function ledgerTypes(app: TestApp, userId: string): Promise<string[]> {
  const db = app.kernel.databases.get('user')!;
  const rows = await db.all<{ type: string }>(`select type from ${db.table('credit_transactions')} where user_id = ?`, [
    userId,
  ]);
  return rows.map((r) => r.type).sort();
}

/** Orders of a user as stored, with their status. */
export async function ordersOf(app: TestApp, userId: string) {
  const db = app.kernel.databases.get('order')!;
  return db.all<{ id: string; status: string }>(`select id, status from ${db.table('orders')} where user_id = ?`, [
    userId,
  ]);
}
