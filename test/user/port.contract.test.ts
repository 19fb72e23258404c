import { randomUUID } from 'node:crypto';
import test from 'ava';
import type { AppError } from '../../src/kernel/errors.js';
import { createHttpPort } from '../../src/kernel/ports.js';
import type { UserPort } from '../../src/modules/user/index.js';
import { userPortDefinition } from '../../src/modules/user/index.js';
import { DATABASES, sharedApp } from '../helpers/app.js';
import { BAD_UUIDS, isInvalid, rejects } from '../helpers/assert.js';
import { ledgerSum } from '../helpers/ledger.js';
import { claimsOf } from '../helpers/tokens.js';
import { adminLogin, grant, newUser, USER_ADAPTERS } from '../helpers/users.js';

for (const kind of DATABASES) {
  const app = sharedApp(kind);

  /** A user with `credits` (in credits) granted through the admin API. */
  async function funded(credits: number) {
    const u = await newUser(app);
    if (credits) await grant(app, await adminLogin(app), u.userId, credits);
    return u;
  }

  for (const [adapter, make] of Object.entries(USER_ADAPTERS)) {
    const name = (s: string) => `[${kind}/${adapter}] ${s}`;

    test(name('getUser returns the user; an unknown id is USER_NOT_FOUND; a malformed id is refused'), async (t) => {
      const port = make(app);
      const u = await funded(12.5);
      const dto = await port.getUser({ userId: u.userId });
      t.like(dto, { userId: u.userId, email: u.email, role: 'customer', isFlagged: false, creditBalance: 1250 });
      t.regex(dto.createdAt, /Z$/);
      await rejects(t, port.getUser({ userId: randomUUID() }), 'USER_NOT_FOUND');
      await rejects(t, port.getUser({ userId: 'not-a-uuid' }), 'VALIDATION_ERROR');
      t.deepEqual(await port.getRiskFlag({ userId: u.userId }), { userId: u.userId, isFlagged: false });
    });

    test(name('debit takes credits once per key and records a PURCHASE row'), async (t) => {
      const port = make(app);
      const u = await funded(100);
      const key = `order:${randomUUID()}:debit`;
      const first = await port.debit({ userId: u.userId, amount: 3550, key, referenceId: 'order-1' });
      t.like(first, { userId: u.userId, amount: -3550, balance: 6450 });
      t.deepEqual(await port.debit({ userId: u.userId, amount: 3550, key }), first);
      t.deepEqual(await ledgerSum(app, u.userId), { sum: 6450, rows: 2, balance: 6450, frozen: 0 });
    });

    test(
      name('a debit beyond the balance is INSUFFICIENT_CREDITS, writes nothing, and its key stays usable'),
      async (t) => {
        const port = make(app);
        const u = await funded(10);
        const key = `order:${randomUUID()}:debit`;
        await rejects(t, port.debit({ userId: u.userId, amount: 1001, key }), 'INSUFFICIENT_CREDITS');
        t.deepEqual(await ledgerSum(app, u.userId), { sum: 1000, rows: 1, balance: 1000, frozen: 0 });
        await grant(app, await adminLogin(app), u.userId, 5);
        t.like(await port.debit({ userId: u.userId, amount: 1001, key }), { balance: 499 });
        await rejects(t, port.debit({ userId: randomUUID(), amount: 1, key: randomUUID() }), 'USER_NOT_FOUND');
      },
    );

    test(name('refund gives credits back once per key'), async (t) => {
      const port = make(app);
      const u = await funded(10);
      await port.debit({ userId: u.userId, amount: 800, key: `k1-${randomUUID()}` });
      const key = randomUUID();
      const r = await port.refund({ userId: u.userId, amount: 800, key });
      t.like(r, { amount: 800, balance: 1000 });
      t.deepEqual(await port.refund({ userId: u.userId, amount: 800, key }), r);
      t.like(await ledgerSum(app, u.userId), { sum: 1000, balance: 1000, rows: 3 });
    });

    test(name('a key used for one operation cannot be replayed as another'), async (t) => {
      const port = make(app);
      const u = await funded(10);
      const key = randomUUID();
      await port.debit({ userId: u.userId, amount: 100, key });
      await rejects(t, port.refund({ userId: u.userId, amount: 100, key }), 'IDEMPOTENCY_CONFLICT');
      t.like(await ledgerSum(app, u.userId), { balance: 900, rows: 2 });
    });

    test(name('moveCredits moves atomically between two users, once per key'), async (t) => {
      const port = make(app);
      const [a, b] = [await funded(50), await funded(0)];
      const key = `transfer:${randomUUID()}`;
      const moved = await port.moveCredits({ fromUserId: a.userId, toUserId: b.userId, amount: 2000, key });
      t.like(moved, {
        debit: { userId: a.userId, amount: -2000, balance: 3000 },
        credit: { userId: b.userId, amount: 2000 },
      });
      t.deepEqual(await port.moveCredits({ fromUserId: a.userId, toUserId: b.userId, amount: 2000, key }), moved);
      await rejects(
        t,
        port.moveCredits({ fromUserId: a.userId, toUserId: b.userId, amount: 3001, key: randomUUID() }),
        'INSUFFICIENT_CREDITS',
      );
      await rejects(
        t,
        port.moveCredits({ fromUserId: a.userId, toUserId: a.userId, amount: 1, key: randomUUID() }),
        'SELF_TRANSFER',
      );
      await rejects(
        t,
        port.moveCredits({ fromUserId: a.userId, toUserId: randomUUID(), amount: 1, key: randomUUID() }),
        'USER_NOT_FOUND',
      );
      t.deepEqual(await ledgerSum(app, a.userId), { sum: 3000, rows: 2, balance: 3000, frozen: 0 });
      t.deepEqual(await ledgerSum(app, b.userId), { sum: 2000, rows: 1, balance: 2000, frozen: 0 });
    });

    test(name('freeze holds back up to the spendable credits; release and a frozen move undo it'), async (t) => {
      const port = make(app);
      const [seller, buyer] = [await funded(30), await funded(0)];
      const frozen = await port.freezeCredits({ userId: seller.userId, amount: 5000, key: randomUUID() });
      t.deepEqual(frozen, { userId: seller.userId, frozen: 3000, creditBalance: 0, frozenCredits: 3000 });
      await rejects(t, port.debit({ userId: seller.userId, amount: 1, key: randomUUID() }), 'INSUFFICIENT_CREDITS');
      const released = await port.releaseCredits({ userId: seller.userId, amount: 1000, key: randomUUID() });
      t.deepEqual(released, { userId: seller.userId, frozen: 1000, creditBalance: 1000, frozenCredits: 2000 });
      const back = await port.moveCredits({
        fromUserId: seller.userId,
        toUserId: buyer.userId,
        amount: 2000,
        key: randomUUID(),
        source: 'frozen',
      });
      t.like(back, { debit: { amount: -2000 }, credit: { amount: 2000, balance: 2000 } });
      await rejects(
        t,
        port.moveCredits({
          fromUserId: seller.userId,
          toUserId: buyer.userId,
          amount: 1,
          key: randomUUID(),
          source: 'frozen',
        }),
        'INSUFFICIENT_CREDITS',
      );
      t.deepEqual(await ledgerSum(app, seller.userId), { sum: 1000, rows: 2, balance: 1000, frozen: 0 });
      t.deepEqual(await ledgerSum(app, buyer.userId), { sum: 2000, rows: 1, balance: 2000, frozen: 0 });
    });

    test(name('malformed arguments are VALIDATION_ERROR and write nothing'), async (t) => {
      const port = make(app);
      const u = await funded(10);
      for (const amount of [0, -5, 1.5, '10' as unknown as number]) {
        await rejects(t, port.debit({ userId: u.userId, amount, key: randomUUID() }), 'VALIDATION_ERROR');
      }
      await rejects(t, port.debit({ userId: u.userId, amount: 1, key: '' }), 'VALIDATION_ERROR');
      t.like(await ledgerSum(app, u.userId), { rows: 1, balance: 1000 });
    });

    test(name('isSessionActive follows login and logout'), async (t) => {
      const port = make(app);
      const u = await newUser(app);
      const sid = claimsOf(u.token).sid as string;
      t.deepEqual(await port.isSessionActive({ sid, userId: u.userId }), { active: true, role: 'customer' });
      await app.request('POST', '/api/auth/logout', { token: u.token, body: {} });
      t.deepEqual(await port.isSessionActive({ sid, userId: u.userId }), { active: false });
    });

    test(name('isSessionActive with a sid or userId that is not a UUID is VALIDATION_ERROR naming it'), async (t) => {
      const port = make(app);
      const u = await newUser(app);
      const sid = claimsOf(u.token).sid as string;
      for (const bad of [...BAD_UUIDS, 'x'.repeat(64)]) {
        for (const [field, args] of [
          ['sid', { sid: bad, userId: u.userId }],
          ['userId', { sid, userId: bad }],
        ] as const) {
          const err = await t.throwsAsync<AppError>(port.isSessionActive(args), undefined, `${field}: ${bad}`);
          t.is(err?.code, 'VALIDATION_ERROR', `${field}: ${bad}: ${err?.message}`);
          t.deepEqual(
            err?.details?.map((d) => d.field),
            [field],
            `${field}: ${bad}`,
          );
        }
      }
      t.deepEqual(await port.isSessionActive({ sid, userId: u.userId }), { active: true, role: 'customer' });
    });

    test(name('isSessionActive reads an id in upper case as the same id'), async (t) => {
      const port = make(app);
      const u = await newUser(app);
      const sid = claimsOf(u.token).sid as string;
      const upper = { sid: sid.toUpperCase(), userId: u.userId.toUpperCase() };
      t.deepEqual(await port.isSessionActive(upper), { active: true, role: 'customer' });
      t.deepEqual(await port.isSessionActive({ sid: randomUUID(), userId: u.userId }), { active: false });
    });
  }

  test(`[${kind}] internal routes refuse callers without the service credential`, async (t) => {
    const u = await newUser(app);
    for (const headers of [{}, { 'x-service-token': 'wrong' }] as Record<string, string>[]) {
      const res = await app.request('POST', '/internal/user/debit', {
        headers,
        body: { userId: u.userId, amount: 1, key: randomUUID() },
      });
      t.is(res.status, 401);
      t.is(res.body.error_code, 'UNAUTHORIZED');
    }
    const wrong = createHttpPort<UserPort>(userPortDefinition, app.url, 'x'.repeat(40));
    await rejects(t, wrong.getUser({ userId: u.userId }), 'UNAUTHORIZED');
  });

  test(`[${kind}] the internal isSessionActive route answers a malformed sid with 400 VALIDATION_ERROR`, async (t) => {
    const u = await newUser(app);
    const res = await app.request('POST', '/internal/user/isSessionActive', {
      headers: { 'x-service-token': app.kernel.config.serviceToken },
      body: { sid: "' OR 1=1 --", userId: u.userId },
    });
    isInvalid(t, res, 'sid');
  });

  test(`[${kind}] an unreachable slice is SERVICE_UNAVAILABLE`, async (t) => {
    const gone = createHttpPort<UserPort>(userPortDefinition, 'http://127.0.0.1:9', app.kernel.config.serviceToken);
    await rejects(t, gone.getUser({ userId: randomUUID() }), 'SERVICE_UNAVAILABLE');
  });
}
