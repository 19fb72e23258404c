import test from 'ava';
import { money } from '../../src/kernel/schemas.js';
import { DATABASES, type TestApp } from '../helpers/app.js';
import { isInvalid } from '../helpers/assert.js';
import { ledgerSum } from '../helpers/ledger.js';
import { newUser, sharedAppWithAdmin, userRowCounts } from '../helpers/users.js';

/** Amounts as written in the JSON text, none of which is a positive whole number of cents. */
const NOT_CENTS = [
  '1e-12',
  '5e-324',
  '1e-7',
  '0.001',
  '0.004999',
  '0.005',
  '0.009',
  '1.005',
  '2.675',
  '19.999',
  '0.1e-1000',
  '-0',
  '-0.0',
  '0',
  '-0.01',
  '-1',
];

/** Amounts with at most two decimals, as written, and the cents they mean. */
const CENTS: [string, number][] = [
  ['0.01', 1],
  ['0.29', 29],
  ['0.30', 30],
  ['1.1', 110],
  ['1.10', 110],
  ['19.99', 1999],
  ['149.5', 14950],
  ['1e2', 10000],
  ['1.5E1', 1500],
  ['9999.99', 999999],
  ['10000', 1_000_000],
];

test('money() turns every amount from 0.01 to 2000.00 credits into its exact cents', (t) => {
  const schema = money({ max: 100_000 });
  let wrong = 0;
  for (let cents = 1; cents <= 200_000; cents++) {
    const { value, error } = schema.validate(cents / 100);
    if (error || value !== cents) wrong++;
  }
  t.is(wrong, 0);
});

test('money() refuses every amount that is not a positive whole number of cents, once', (t) => {
  const schema = money({ max: 100_000 });
  for (const text of [...NOT_CENTS, '100000.01', '1e6', '1e21', '1e300']) {
    const { error } = schema.validate(JSON.parse(text), { abortEarly: false });
    t.truthy(error, text);
    t.is(error?.details.length, 1, `${text}: ${error?.message}`);
  }
});

for (const kind of DATABASES) {
  const { app, admin } = sharedAppWithAdmin(kind);
  const name = (s: string) => `[${kind}] ${s}`;
  const json = { 'content-type': 'application/json' };

  const grant = (userId: string, amount: string) =>
    app.request('POST', '/api/admin/credits', {
      token: admin.token,
      raw: `{"user_id":"${userId}","amount":${amount},"reason":"test"}`,
      headers: json,
    });
  const topup = (token: string, amount: string) =>
    app.request('POST', '/api/credits/topup', { token, raw: `{"amount":${amount}}`, headers: json });

  async function intents(a: TestApp, userId: string) {
    const db = a.kernel.databases.get('user')!;
    const rows = await db.all<{ amount: number | string }>(
      `select amount from ${db.table('payment_intents')} where user_id = ?`,
      [userId],
    );
    return rows.map((r) => Number(r.amount));
  }

  // Serial: it counts every row of the module, which concurrent tests would change.
  test.serial(name('a grant or top-up of a fraction of a cent, zero or less is 400 and writes nothing'), async (t) => {
    const u = await newUser(app);
    const before = await userRowCounts(app);
    for (const amount of NOT_CENTS) {
      isInvalid(t, await grant(u.userId, amount), 'amount');
      isInvalid(t, await topup(u.token, amount), 'amount');
    }
    isInvalid(t, await topup(u.token, '10000.01'), 'amount');
    isInvalid(t, await grant(u.userId, '1000000.01'), 'amount');
    t.deepEqual(await userRowCounts(app), before);
    t.deepEqual(await intents(app, u.userId), []);
    t.deepEqual(await ledgerSum(app, u.userId), { sum: 0, rows: 0, balance: 0, frozen: 0 });
  });

  test(name('grants of amounts with at most two decimals are exact to the cent'), async (t) => {
    for (const [amount, cents] of CENTS) {
      const u = await newUser(app);
      const res = await grant(u.userId, amount);
      t.is(res.status, 201, `${amount}: ${JSON.stringify(res.body)}`);
      t.is(res.body.data.amount, cents / 100, amount);
      t.deepEqual(await ledgerSum(app, u.userId), { sum: cents, rows: 1, balance: cents, frozen: 0 }, amount);
    }
  });

  test(name('top-ups of amounts with at most two decimals ask the provider for the exact cents'), async (t) => {
    const u = await newUser(app);
    for (const [amount, cents] of CENTS) {
      const res = await topup(u.token, amount);
      t.is(res.status, 200, `${amount}: ${JSON.stringify(res.body)}`);
      t.is(res.body.data.amount, cents / 100, amount);
    }
    t.deepEqual(
      (await intents(app, u.userId)).sort((a, b) => a - b),
      CENTS.map(([, c]) => c).sort((a, b) => a - b),
    );
  });
}
