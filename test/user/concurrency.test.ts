import { randomUUID } from 'node:crypto';
import test from 'ava';
import { AppError } from '../../src/kernel/errors.js';
import { sharedApp, TARGETS } from '../helpers/app.js';
import { ledgerSum } from '../helpers/ledger.js';
import { adminLogin, grant, newUser, USER_ADAPTERS } from '../helpers/users.js';

for (const kind of TARGETS) {
  const app = sharedApp(kind);

  for (const [adapter, make] of Object.entries(USER_ADAPTERS)) {
    const name = (s: string) => `[${kind}/${adapter}] ${s}`;

    test(name('50 concurrent debits of 10 against 100 credits: exactly 10 succeed and the balance is 0'), async (t) => {
      const port = make(app);
      const u = await newUser(app);
      await grant(app, await adminLogin(app), u.userId, 100);
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, () => port.debit({ userId: u.userId, amount: 1000, key: randomUUID() })),
      );
      const ok = results.filter((r) => r.status === 'fulfilled');
      const refused = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
      t.is(ok.length, 10);
      t.true(refused.every((r) => r.reason instanceof AppError && r.reason.code === 'INSUFFICIENT_CREDITS'));
      t.deepEqual(await ledgerSum(app, u.userId), { sum: 0, rows: 11, balance: 0, frozen: 0 });
      const balances = ok
        .map((r) => (r as PromiseFulfilledResult<{ balance: number }>).value.balance)
        .sort((a, b) => a - b);
      t.deepEqual(balances, [0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000]);
    });

    test(name('the same debit key sent 20 times at once is charged once'), async (t) => {
      const port = make(app);
      const u = await newUser(app);
      await grant(app, await adminLogin(app), u.userId, 100);
      const key = `order:${randomUUID()}:debit`;
      const results = await Promise.all(
        Array.from({ length: 20 }, () => port.debit({ userId: u.userId, amount: 2500, key })),
      );
      t.is(new Set(results.map((r) => r.transactionId)).size, 1);
      t.deepEqual(await ledgerSum(app, u.userId), { sum: 7500, rows: 2, balance: 7500, frozen: 0 });
    });

    test(name('opposite concurrent moves between two users neither deadlock nor lose credits'), async (t) => {
      const port = make(app);
      const [a, b] = [await newUser(app), await newUser(app)];
      const admin = await adminLogin(app);
      await grant(app, admin, a.userId, 50);
      await grant(app, admin, b.userId, 50);
      const moves = Array.from({ length: 40 }, (_, i) =>
        port.moveCredits({
          fromUserId: i % 2 ? a.userId : b.userId,
          toUserId: i % 2 ? b.userId : a.userId,
          amount: 300,
          key: randomUUID(),
        }),
      );
      const settled = await Promise.allSettled(moves);
      const failures = settled.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
      t.true(failures.every((r) => r.reason instanceof AppError && r.reason.code === 'INSUFFICIENT_CREDITS'));
      const [sa, sb] = [await ledgerSum(app, a.userId), await ledgerSum(app, b.userId)];
      t.is(sa.sum, sa.balance);
      t.is(sb.sum, sb.balance);
      t.is(sa.balance + sb.balance, 10000);
    });
  }
}
