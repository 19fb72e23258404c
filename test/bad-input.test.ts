import { randomUUID } from 'node:crypto';
import { invalid, isError } from './helpers/assert.js';
import { badInputSuite, type Endpoint, type Fixture, HOSTILE } from './helpers/bad-input.js';
import { adminLogin, login, newUser, type TestUser, userRowCounts } from './helpers/users.js';

/** Every user endpoint against the shared bad-input suite (test/helpers/bad-input.ts). */

interface UserFixture extends Fixture {
  target: TestUser;
}

function endpoints(f: UserFixture): Endpoint[] {
  return [
    {
      name: 'register',
      method: 'POST',
      path: '/api/auth/register',
      auth: 'public',
      // A getter: every use is a new email, so that an accepted registration never collides.
      get body() {
        return { email: `bad-${randomUUID()}@test.local`, phone: '+6591234567', password: 'correct-horse-1' };
      },
      required: ['email', 'phone', 'password'],
      wrongTypes: {
        email: [1, true, [], {}],
        phone: [6591234567, null, ['+6591234567']],
        password: [12345678, null, ['correct-horse-1']],
        full_name: [1, {}, ['x'], false],
      },
      strings: { email: invalid, phone: invalid, password: 'accepted', full_name: 'accepted' },
      writes: { users: 1 },
    },
    {
      name: 'login',
      method: 'POST',
      path: '/api/auth/login',
      auth: 'public',
      body: { email: f.user.email, password: f.user.password },
      required: ['email', 'password'],
      wrongTypes: { email: [1, null, [f.user.email]], password: [12345678, null, { $ne: '' }] },
      strings: { email: invalid, password: { status: 401, code: 'UNAUTHORIZED' } },
    },
    { name: 'refresh', method: 'POST', path: '/api/auth/refresh', auth: 'refresh' },
    {
      name: 'logout',
      method: 'POST',
      path: '/api/auth/logout',
      auth: 'user',
      body: { refresh_token: f.user.refreshToken },
      wrongTypes: { refresh_token: [1, true, {}, [f.user.refreshToken]] },
      strings: { refresh_token: 'accepted' },
    },
    { name: 'me', method: 'GET', path: '/api/users/me', auth: 'user' },
    {
      name: 'admin users list',
      method: 'GET',
      path: '/api/admin/users',
      auth: 'admin',
      query: { email: 'test.local', page: '1', per_page: '5' },
      wrongTypes: { page: ['abc', '1.5', '-1', '0', '1e99'], per_page: ['abc', '0', '101', '2.5'] },
      strings: { email: 'accepted', page: invalid, per_page: invalid },
    },
    {
      name: 'admin user patch',
      method: 'PATCH',
      path: '/api/admin/users/:user_id',
      params: { user_id: f.target.userId },
      auth: 'admin',
      refusesEmpty: true,
      body: { role: 'customer', is_flagged: false },
      wrongTypes: { role: [1, true, null, ['staff']], is_flagged: ['true', 1, 0, null, 'false'] },
      strings: { role: invalid },
    },
    { name: 'credits balance', method: 'GET', path: '/api/credits/balance', auth: 'user' },
    {
      name: 'credits transactions',
      method: 'GET',
      path: '/api/credits/transactions',
      auth: 'user',
      query: { page: '1', per_page: '5' },
      wrongTypes: { page: ['abc', '0'], per_page: ['abc', '101'] },
      strings: { page: invalid, per_page: invalid },
    },
    {
      name: 'admin credits',
      method: 'POST',
      path: '/api/admin/credits',
      auth: 'admin',
      body: { user_id: f.target.userId, amount: 1, reason: 'bad input suite' },
      required: ['user_id', 'amount', 'reason'],
      wrongTypes: {
        user_id: [1, true, {}, [f.target.userId]],
        amount: ['1', true, null, [1], { cents: 100 }, -1, -0.01, 0.015, 1.005, 0, 1e7],
        reason: [1, {}, null, ['x']],
      },
      uuids: ['user_id'],
      strings: { user_id: { status: 400, code: 'INVALID_UUID' }, amount: invalid, reason: 'accepted' },
      writes: { ledger: 1, operations: 1 },
    },
  ];
}

badInputSuite<UserFixture>({
  async fixture(app) {
    const [user, target] = await Promise.all([newUser(app), newUser(app)]);
    return { user, target, admin: await adminLogin(app) };
  },
  endpoints,
  rows: userRowCounts,
  extra: {
    async hostile({ t, app, f }) {
      // Registration: a hostile full name and password are legitimate, stored and given back as they are.
      for (const hostile of HOSTILE) {
        const email = `hostile-${randomUUID()}@test.local`;
        const res = await app.request('POST', '/api/auth/register', {
          body: { email, phone: '+6591234567', password: hostile, full_name: hostile },
        });
        t.is(res.status, 201, hostile);
        const u = await login(app, email, hostile);
        const me = await app.request('GET', '/api/users/me', { token: u.token });
        t.is(me.body.data.full_name, hostile);
        t.regex(me.headers.get('content-type') ?? '', /^application\/json/);
      }
      // The reasons came back verbatim as the ledger's reference ids.
      const ledger = await app.request('GET', `/api/credits/transactions?per_page=100`, { token: f.target.token });
      const references = new Set(ledger.body.data.map((e: { reference_id: string }) => e.reference_id));
      for (const hostile of HOSTILE) t.true(references.has(hostile), hostile);
      // No table was dropped, no row read by the injection attempts.
      const list = await app.request('GET', `/api/admin/users?email=${encodeURIComponent("' OR 1=1 --")}`, {
        token: f.admin.token,
      });
      t.deepEqual(list.body.data, []);
    },
    async routes({ t, app, f }) {
      for (const path of ['/api', '/api/auth', '/api/admin/users/x/y']) {
        isError(t, await app.request('GET', path, { token: f.admin.token }), 404, 'NOT_FOUND');
      }
      const res = await app.request('POST', '/health');
      isError(t, res, 405, 'METHOD_NOT_ALLOWED');
      t.truthy(res.headers.get('allow'), 'POST /health says what is allowed');
    },
  },
});
