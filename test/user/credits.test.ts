import { randomUUID } from 'node:crypto';
import test from 'ava';
import { TARGETS } from '../helpers/app.js';
import { isError, isInvalid } from '../helpers/assert.js';
import { ledgerSum } from '../helpers/ledger.js';
import { grant, newUser, sharedAppWithAdmin, type TestUser, userRowCounts } from '../helpers/users.js';

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

for (const kind of TARGETS) {
  const { app, admin } = sharedAppWithAdmin(kind);
  const name = (s: string) => `[${kind}] ${s}`;

  const balance = (u: TestUser) => app.request('GET', '/api/credits/balance', { token: u.token });
  const transactions = (u: TestUser, query = '') =>
    app.request('GET', `/api/credits/transactions${query}`, { token: u.token });
  const grantRaw = (body: unknown, headers: Record<string, string> = {}) =>
    app.request('POST', '/api/admin/credits', { token: admin.token, body, headers });

  test(name('a new user has a zero balance and an empty ledger'), async (t) => {
    const u = await newUser(app);
    const res = await balance(u);
    t.is(res.status, 200);
    t.deepEqual(res.body.data, { user_id: u.userId, credit_balance: 0, frozen_credits: 0 });
    const list = await transactions(u);
    t.deepEqual(list.body.data, []);
    t.deepEqual(list.body.pagination, { page: 1, per_page: 20, total: 0, total_pages: 0 });
  });

  test(name('an admin grant answers 201 with a GRANT entry and is exact to the cent'), async (t) => {
    const u = await newUser(app);
    const res = await grantRaw({ user_id: u.userId, amount: 149.5, reason: 'welcome bonus' });
    t.is(res.status, 201);
    t.like(res.body.data, {
      user_id: u.userId,
      type: 'GRANT',
      amount: 149.5,
      credit_balance: 149.5,
      reference_id: 'welcome bonus',
    });
    t.regex(res.body.data.transaction_id, /^[0-9a-f-]{36}$/);
    await grant(app, admin, u.userId, 0.1);
    await grant(app, admin, u.userId, 0.2);
    t.is((await balance(u)).body.data.credit_balance, 149.8);
    t.deepEqual(await ledgerSum(app, u.userId), { sum: 14980, rows: 3, balance: 14980, frozen: 0 });
  });

  test(name('the largest grant, 1 000 000 credits, is accepted; a cent more is not'), async (t) => {
    const u = await newUser(app);
    isInvalid(t, await grantRaw({ user_id: u.userId, amount: 1_000_000.01, reason: 'too much' }), 'amount');
    const res = await grantRaw({ user_id: u.userId, amount: 1_000_000, reason: 'jackpot' });
    t.is(res.status, 201);
    t.is((await balance(u)).body.data.credit_balance, 1_000_000);
  });

  test(name('the ledger lists entries newest first, signed, with the balance after each'), async (t) => {
    const u = await newUser(app);
    const port = app.kernel.ports.get('user');
    await grant(app, admin, u.userId, 100);
    await port.debit({ userId: u.userId, amount: 3550, key: `test:${randomUUID()}`, referenceId: 'order-1' });
    await grant(app, admin, u.userId, 0.25);
    const res = await transactions(u);
    t.is(res.status, 200);
    t.deepEqual(
      res.body.data.map((e: { type: string; amount: number; balance_after: number }) => [
        e.type,
        e.amount,
        e.balance_after,
      ]),
      [
        ['GRANT', 0.25, 64.75],
        ['PURCHASE', -35.5, 64.5],
        ['GRANT', 100, 100],
      ],
    );
    const entry = res.body.data[1];
    t.deepEqual(Object.keys(entry).sort(), [
      'amount',
      'balance_after',
      'created_at',
      'reference_id',
      'transaction_id',
      'type',
    ]);
    t.is(entry.reference_id, 'order-1');
    t.regex(entry.created_at, ISO_UTC);
    t.is((await balance(u)).body.data.credit_balance, 64.75);
  });

  test(name('the ledger is paginated and shows only the caller’s entries'), async (t) => {
    const u = await newUser(app);
    const other = await newUser(app);
    for (const amount of [1, 2, 3]) await grant(app, admin, u.userId, amount);
    await grant(app, admin, other.userId, 50);
    const first = await transactions(u, '?per_page=2');
    t.deepEqual(first.body.pagination, { page: 1, per_page: 2, total: 3, total_pages: 2 });
    t.deepEqual(
      first.body.data.map((e: { amount: number }) => e.amount),
      [3, 2],
    );
    const second = await transactions(u, '?per_page=2&page=2');
    t.deepEqual(
      second.body.data.map((e: { amount: number }) => e.amount),
      [1],
    );
    t.deepEqual((await transactions(u, '?page=9')).body.data, []);
    for (const q of ['?per_page=0', '?per_page=101', '?per_page=abc', '?page=0']) {
      isError(t, await transactions(u, q), 400, 'VALIDATION_ERROR');
    }
  });

  test(name('the same Idempotency-Key grants once, even when sent concurrently'), async (t) => {
    const u = await newUser(app);
    const key = `grant-${randomUUID()}`;
    const body = { user_id: u.userId, amount: 25, reason: 'retried' };
    const first = await grantRaw(body, { 'Idempotency-Key': key });
    const again = await grantRaw(body, { 'Idempotency-Key': key });
    t.is(first.status, 201);
    t.is(again.status, 201);
    t.deepEqual(again.body.data, first.body.data);
    const storm = await Promise.all(
      Array.from({ length: 10 }, () => grantRaw({ ...body, amount: 5 }, { 'Idempotency-Key': `${key}-storm` })),
    );
    t.true(storm.every((r) => r.status === 201));
    t.is(new Set(storm.map((r) => r.body.data.transaction_id)).size, 1);
    t.deepEqual(await ledgerSum(app, u.userId), { sum: 3000, rows: 2, balance: 3000, frozen: 0 });
    // Without a key every grant is its own.
    await grantRaw(body);
    await grantRaw(body);
    t.is((await balance(u)).body.data.credit_balance, 80);
  });

  test(name('an Idempotency-Key reused for another user or amount answers 409 IDEMPOTENCY_CONFLICT'), async (t) => {
    const [u, other] = await Promise.all([newUser(app), newUser(app)]);
    const key = `grant-${randomUUID()}`;
    t.is((await grantRaw({ user_id: u.userId, amount: 10, reason: 'first' }, { 'Idempotency-Key': key })).status, 201);
    const otherUser = await grantRaw(
      { user_id: other.userId, amount: 10, reason: 'first' },
      { 'Idempotency-Key': key },
    );
    isError(t, otherUser, 409, 'IDEMPOTENCY_CONFLICT');
    const otherAmount = await grantRaw({ user_id: u.userId, amount: 99, reason: 'first' }, { 'Idempotency-Key': key });
    isError(t, otherAmount, 409, 'IDEMPOTENCY_CONFLICT');
    t.deepEqual(await ledgerSum(app, u.userId), { sum: 1000, rows: 1, balance: 1000, frozen: 0 });
    t.deepEqual(await ledgerSum(app, other.userId), { sum: 0, rows: 0, balance: 0, frozen: 0 });
  });

  // Serial: it counts every row of the module, which concurrent tests would change.
  test.serial(name('a grant to an unknown user answers 404 USER_NOT_FOUND and writes nothing'), async (t) => {
    const before = await userRowCounts(app);
    const res = await grantRaw({ user_id: randomUUID(), amount: 10, reason: 'ghost' }, { 'Idempotency-Key': 'ghost' });
    isError(t, res, 404, 'USER_NOT_FOUND');
    t.deepEqual(await userRowCounts(app), before);
  });

  // Serial: it counts every row of the module, which concurrent tests would change.
  test.serial(name('bad amounts, reasons, ids and keys answer 400 and write nothing'), async (t) => {
    const u = await newUser(app);
    const before = await userRowCounts(app);
    const ok = { user_id: u.userId, amount: 10, reason: 'fine' };
    for (const amount of [0, -5, -0.01, 1.005, 0.001, '10', 1e7, null, true, [10], { value: 10 }]) {
      isInvalid(t, await grantRaw({ ...ok, amount }), 'amount');
    }
    for (const reason of ['', '   ', 'r'.repeat(201), 42, null]) {
      isInvalid(t, await grantRaw({ ...ok, reason }), 'reason');
    }
    isInvalid(t, await grantRaw({ user_id: u.userId, amount: 10 }), 'reason');
    isInvalid(t, await grantRaw({ ...ok, user_id: 'not-a-uuid' }), 'user_id', 'INVALID_UUID');
    isInvalid(t, await grantRaw({ ...ok, user_id: 7 }), 'user_id');
    isInvalid(t, await grantRaw({ ...ok, note: 'extra' }), 'note');
    for (const key of ['has spaces', 'k'.repeat(101), "' OR 1=1 --"]) {
      isError(t, await grantRaw(ok, { 'Idempotency-Key': key }), 400, 'VALIDATION_ERROR');
    }
    t.deepEqual(await userRowCounts(app), before);
    t.deepEqual((await balance(u)).body.data, { user_id: u.userId, credit_balance: 0, frozen_credits: 0 });
  });

  test(name('balance + frozen equals the ledger sum for every user, after grants, debits and freezes'), async (t) => {
    const port = app.kernel.ports.get('user');
    const users = await Promise.all([newUser(app), newUser(app), newUser(app)]);
    await Promise.all(users.map((u, i) => grant(app, admin, u.userId, 10 * (i + 1))));
    await port.debit({ userId: users[0].userId, amount: 250, key: `test:${randomUUID()}` });
    await port.freezeCredits({ userId: users[1].userId, amount: 500, key: `test:${randomUUID()}` });
    await port.moveCredits({
      fromUserId: users[2].userId,
      toUserId: users[0].userId,
      amount: 999,
      key: `test:${randomUUID()}`,
    });
    const frozen = await balance(users[1]);
    t.deepEqual(frozen.body.data, { user_id: users[1].userId, credit_balance: 15, frozen_credits: 5 });
    for (const u of users) {
      const s = await ledgerSum(app, u.userId);
      t.is(s.balance + s.frozen, s.sum, `user ${u.userId}`);
    }
    const db = app.kernel.databases.get('user')!;
    const [all] = await db.all<{ balances: number | string; ledger: number | string }>(
      `select (select coalesce(sum(credit_balance + frozen_credits), 0) from ${db.table('users')}) as balances,
              (select coalesce(sum(amount), 0) from ${db.table('credit_transactions')}) as ledger`,
    );
    t.is(Number(all.balances), Number(all.ledger));
  });

  test(name('credits endpoints need a token'), async (t) => {
    isError(t, await app.request('GET', '/api/credits/balance'), 401, 'UNAUTHORIZED');
    isError(t, await app.request('GET', '/api/credits/transactions'), 401, 'UNAUTHORIZED');
    isError(
      t,
      await app.request('POST', '/api/admin/credits', { body: { user_id: randomUUID(), amount: 1, reason: 'x' } }),
      401,
      'UNAUTHORIZED',
    );
  });
}
