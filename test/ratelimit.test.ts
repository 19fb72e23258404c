import test from 'ava';
import { createApp, loadAppConfig } from '../src/app.js';
import { manualClock } from '../src/kernel/clock.js';
import { listen } from '../src/kernel/server.js';
import { DATABASES, request, startApp, TEST_ADMIN } from './helpers/app.js';
import { isError } from './helpers/assert.js';

/**
 * Request limits are counted in the module's database: two instances of a slice on one database
 * count together, a route may have its own limit (RATE_LIMITS), every answer says what is left,
 * and a new minute starts afresh.
 */

for (const kind of DATABASES) {
  test.serial(
    `[${kind}] two instances of the user slice share one login limit; RATE_LIMITS sets it per route`,
    async (t) => {
      const clock = manualClock();
      const first = await startApp(kind, { RATE_LIMITS: 'login=4', RATE_LIMIT_PER_MINUTE: '100' }, { clock });
      t.teardown(() => first.close());
      // A second instance on the same database, as a second process of the slice would be.
      const kernel = await createApp(loadAppConfig(first.env), { clock });
      const running = await listen(kernel, 0, '127.0.0.1');
      t.teardown(() => running.close());
      const second = `http://127.0.0.1:${running.port}`;
      const login = (base: string) => request(base, 'POST', '/api/auth/login', { body: TEST_ADMIN });

      const answers = [];
      for (const base of [first.url, second, first.url, second]) answers.push(await login(base));
      t.deepEqual(
        answers.map((a) => a.status),
        [200, 200, 200, 200],
      );
      t.deepEqual(
        answers.map((a) => [a.headers.get('ratelimit-limit'), a.headers.get('ratelimit-remaining')]),
        [
          ['4', '3'],
          ['4', '2'],
          ['4', '1'],
          ['4', '0'],
        ],
        'both instances count into one window',
      );
      for (const base of [first.url, second]) {
        const refused = await login(base);
        isError(t, refused, 429, 'RATE_LIMITED');
        t.true(Number(refused.headers.get('retry-after')) >= 1);
      }
      // Another route keeps the general limit.
      const other = await request(first.url, 'POST', '/api/auth/register', {
        body: { email: `rl-${Date.now()}@test.local`, password: 'correct-horse-1', phone: '+6591234567' },
      });
      t.is(other.status, 201);
      t.is(other.headers.get('ratelimit-limit'), '100');

      // The next minute starts afresh; the ended windows are purged.
      clock.advance(61_000);
      t.is((await login(second)).status, 200);
      await first.kernel.jobs.run('user', 'rate-limit-purge');
      const db = first.kernel.databases.get('user')!;
      const rows = await db.all<{ n: number | string }>(`select count(*) as n from ${db.table('rate_limits')}`);
      t.is(Number(rows[0].n), 1, 'only the login limit, its window begun anew, is left');
    },
  );
}

test.serial(
  '[sqlite] a window runs a minute from its first request: the turn of a clock minute lets nothing more through',
  async (t) => {
    const clock = manualClock();
    // Half a second before a minute turns on the clock.
    clock.advance(60_000 - (clock.now() % 60_000) - 500);
    const app = await startApp('sqlite', { RATE_LIMITS: 'login=2' }, { clock });
    t.teardown(() => app.close());
    const login = () => app.request('POST', '/api/auth/login', { body: TEST_ADMIN });
    t.is((await login()).status, 200);
    clock.advance(1000);
    t.is((await login()).status, 200);
    isError(t, await login(), 429, 'RATE_LIMITED');
    clock.advance(59_500);
    t.is((await login()).status, 200, 'a minute after the first request, a new window');
  },
);

test('a malformed RATE_LIMITS stops the start with a message naming it', (t) => {
  const error = t.throws(() => loadAppConfig({ NODE_ENV: 'test', RATE_LIMITS: 'login=ten' }));
  t.regex(error?.message ?? '', /RATE_LIMITS must be route=number pairs/);
});
