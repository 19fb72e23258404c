import { randomUUID } from 'node:crypto';
import test from 'ava';
import { createApp, loadAppConfig } from '../../src/app.js';
import { listen } from '../../src/kernel/server.js';
import { DATABASES, request, startApp, TEST_ADMIN } from '../helpers/app.js';
import { isError, isInvalid, USER_VIEW_KEYS } from '../helpers/assert.js';
import { adminLogin, login, newUser, sharedAppWithAdmin, type TestUser } from '../helpers/users.js';

for (const kind of DATABASES) {
  const { app, admin } = sharedAppWithAdmin(kind);
  const name = (s: string) => `[${kind}] ${s}`;

  const list = (query: string, token = admin.token) => app.request('GET', `/api/admin/users${query}`, { token });
  const patch = (id: string, body: unknown, token = admin.token) =>
    app.request('PATCH', `/api/admin/users/${id}`, { token, body });

  /** Registers users whose emails share a fresh tag, in order. */
  async function tagged(locals: string[]) {
    const tag = `t${randomUUID().slice(0, 8)}`;
    const emails = [];
    for (const local of locals) {
      const email = `${local}.${tag}@test.local`;
      const res = await app.request('POST', '/api/auth/register', {
        body: { email, phone: '+6591234567', password: 'correct-horse-1' },
      });
      if (res.status !== 201) throw new Error(`register ${email}: ${res.status}`);
      emails.push(email);
    }
    return { tag, emails };
  }

  test(name('the user list is a paginated envelope, filtered by email, oldest first'), async (t) => {
    const { tag, emails } = await tagged(['a', 'b', 'c']);
    const first = await list(`?email=${tag}&per_page=2`);
    t.is(first.status, 200);
    t.is(first.body.success, true);
    t.deepEqual(first.body.pagination, { page: 1, per_page: 2, total: 3, total_pages: 2 });
    t.deepEqual(
      first.body.data.map((u: { email: string }) => u.email),
      emails.slice(0, 2),
    );
    t.deepEqual(Object.keys(first.body.data[0]).sort(), USER_VIEW_KEYS);
    const second = await list(`?email=${tag.toUpperCase()}&per_page=2&page=2`);
    t.deepEqual(
      second.body.data.map((u: { email: string }) => u.email),
      emails.slice(2),
    );
    const past = await list(`?email=${tag}&per_page=2&page=3`);
    t.is(past.status, 200);
    t.deepEqual(past.body.data, []);
    t.deepEqual(past.body.pagination, { page: 3, per_page: 2, total: 3, total_pages: 2 });
    const none = await list(`?email=nobody-${randomUUID()}`);
    t.deepEqual(none.body.data, []);
    t.deepEqual(none.body.pagination, { page: 1, per_page: 20, total: 0, total_pages: 0 });
  });

  test(name('without a filter, or with an empty one, every user is listed with per_page 20 by default'), async (t) => {
    for (const query of ['', '?email=']) {
      const res = await list(query);
      t.is(res.status, 200);
      t.is(res.body.pagination.per_page, 20);
      t.true(res.body.pagination.total >= 1);
      t.true(res.body.data.length >= 1);
    }
  });

  test(name('the email filter takes % and _ literally'), async (t) => {
    const { tag } = await tagged(['john_doe', 'johnxdoe', 'percent%sign']);
    const underscore = await list(`?email=${encodeURIComponent(`john_doe.${tag}`)}`);
    t.deepEqual(
      underscore.body.data.map((u: { email: string }) => u.email),
      [`john_doe.${tag}@test.local`],
    );
    const percent = await list(`?email=${encodeURIComponent(`t%sign.${tag}`)}`);
    t.deepEqual(
      percent.body.data.map((u: { email: string }) => u.email),
      [`percent%sign.${tag}@test.local`],
    );
    t.is((await list(`?email=${encodeURIComponent(`${tag}%`)}`)).body.pagination.total, 0);
  });

  test(name('page and per_page outside their bounds answer 400 VALIDATION_ERROR'), async (t) => {
    for (const q of ['per_page=0', 'per_page=101', 'per_page=abc', 'per_page=1.5', 'per_page=-1', 'per_page=']) {
      isInvalid(t, await list(`?${q}`), 'per_page');
    }
    for (const q of ['page=0', 'page=-1', 'page=abc', 'page=2.5', 'page=1&page=2']) {
      isInvalid(t, await list(`?${q}`), 'page');
    }
    t.is((await list('?per_page=100&page=1')).status, 200);
    isInvalid(t, await list('?role=admin'), 'role');
    isInvalid(t, await list(`?email=${'x'.repeat(255)}`), 'email');
  });

  test(name('PATCH changes the role and the risk flag and answers with the updated user'), async (t) => {
    const u = await newUser(app);
    const res = await patch(u.userId, { role: 'staff', is_flagged: true });
    t.is(res.status, 200);
    t.like(res.body.data, { user_id: u.userId, email: u.email, role: 'staff', is_flagged: true });
    const unflag = await patch(u.userId, { is_flagged: false });
    t.like(unflag.body.data, { role: 'staff', is_flagged: false });
    const profile = await app.request('GET', '/api/users/me', { token: u.token });
    t.like(profile.body.data, { role: 'staff', is_flagged: false });
    // An id in upper case names the same user on every database.
    const upper = await patch(u.userId.toUpperCase(), { is_flagged: true });
    t.is(upper.status, 200);
    t.is(upper.body.data.user_id, u.userId);
  });

  test(name('a role change takes effect on the very next request with the same token, both ways'), async (t) => {
    const u = await newUser(app);
    // Each request checks the session; the first one here makes it a known, live session.
    isError(t, await list('', u.token), 403, 'FORBIDDEN');
    t.is((await patch(u.userId, { role: 'admin' })).status, 200);
    t.is((await list('', u.token)).status, 200, 'promoted: the admin route at once');
    t.is((await patch(u.userId, { role: 'customer' })).status, 200);
    isError(t, await list('', u.token), 403, 'FORBIDDEN');
  });

  test(name('PATCH refuses unknown users, malformed ids and bad bodies'), async (t) => {
    const u = await newUser(app);
    isError(t, await patch(randomUUID(), { role: 'staff' }), 404, 'USER_NOT_FOUND');
    isInvalid(t, await patch('not-a-uuid', { role: 'staff' }), 'user_id', 'INVALID_UUID');
    isInvalid(t, await patch(`${u.userId}0`, { role: 'staff' }), 'user_id', 'INVALID_UUID');
    isError(t, await patch(u.userId, {}), 400, 'VALIDATION_ERROR');
    isError(
      t,
      await app.request('PATCH', `/api/admin/users/${u.userId}`, { token: admin.token }),
      400,
      'VALIDATION_ERROR',
    );
    isInvalid(t, await patch(u.userId, { role: 'superadmin' }), 'role');
    isInvalid(t, await patch(u.userId, { role: 'ADMIN' }), 'role');
    isInvalid(t, await patch(u.userId, { is_flagged: 'yes' }), 'is_flagged');
    isInvalid(t, await patch(u.userId, { role: 'staff', email: 'x@y.z' }), 'email');
    const profile = await app.request('GET', '/api/users/me', { token: u.token });
    t.like(profile.body.data, { role: 'customer', is_flagged: false });
  });

  test(name('an admin cannot take away their own admin role'), async (t) => {
    const second = await newUser(app);
    await patch(second.userId, { role: 'admin' });
    isError(t, await patch(second.userId, { role: 'customer' }, second.token), 403, 'FORBIDDEN');
    t.is((await patch(second.userId, { is_flagged: true }, second.token)).status, 200);
  });

  test(name('customers and staff get 403 FORBIDDEN on admin routes; no token gets 401'), async (t) => {
    const customer = await newUser(app);
    const staff = await newUser(app);
    await patch(staff.userId, { role: 'staff' });
    const calls = (token?: string) => [
      app.request('GET', '/api/admin/users', { token }),
      app.request('PATCH', `/api/admin/users/${customer.userId}`, { token, body: { role: 'admin' } }),
      app.request('POST', '/api/admin/credits', {
        token,
        body: { user_id: customer.userId, amount: 10, reason: 'self-service' },
      }),
    ];
    for (const res of await Promise.all(calls(customer.token))) isError(t, res, 403, 'FORBIDDEN');
    for (const res of await Promise.all(calls(staff.token))) isError(t, res, 403, 'FORBIDDEN');
    for (const res of await Promise.all(calls())) isError(t, res, 401, 'UNAUTHORIZED');
    const profile = await app.request('GET', '/api/users/me', { token: customer.token });
    t.like(profile.body.data, { role: 'customer', credit_balance: 0 });
  });

  test(name('the first admin comes from ADMIN_EMAIL once, also after a restart on the same database'), async (t) => {
    const own = await startApp(kind);
    t.teardown(() => own.close());
    const countAdmins = async (db = own.kernel.databases.get('user')!) => {
      const rows = await db.all<{ role: string }>(`select role from ${db.table('users')} where email = ?`, [
        TEST_ADMIN.email,
      ]);
      return rows.map((r) => r.role);
    };
    t.deepEqual(await countAdmins(), ['admin']);
    await own.running.close();

    const kernel = await createApp(loadAppConfig(own.env));
    const running = await listen(kernel, 0, '127.0.0.1');
    t.teardown(() => running.close());
    t.deepEqual(await countAdmins(kernel.databases.get('user')!), ['admin']);
    const base = `http://127.0.0.1:${running.port}`;
    const res = await request(base, 'POST', '/api/auth/login', { body: TEST_ADMIN });
    t.is(res.status, 200);
    t.is(res.body.data.user.role, 'admin');
  });

  test(name('the first admin can log in with ADMIN_PASSWORD and is an admin'), async (t) => {
    const root = await login(app, TEST_ADMIN.email.toUpperCase(), TEST_ADMIN.password);
    const profile = await app.request('GET', '/api/users/me', { token: root.token });
    t.like(profile.body.data, { email: TEST_ADMIN.email, role: 'admin' });
  });

  test(name('two admins demoting each other at once: exactly one wins and an admin always remains'), async (t) => {
    const own = await startApp(kind);
    t.teardown(() => own.close());
    const db = own.kernel.databases.get('user')!;
    const admins = async () =>
      (await db.all<{ id: string }>(`select id from ${db.table('users')} where role = 'admin'`)).map((r) => r.id);
    const demote = (target: TestUser, by: TestUser) =>
      own.request('PATCH', `/api/admin/users/${target.userId}`, { token: by.token, body: { role: 'customer' } });
    // The survivor of each round meets a newly promoted admin in the next, so that every round starts with two.
    let survivor = await adminLogin(own);
    for (let round = 0; round < 10; round++) {
      const rival = await newUser(own);
      const promoted = await own.request('PATCH', `/api/admin/users/${rival.userId}`, {
        token: survivor.token,
        body: { role: 'admin' },
      });
      t.is(promoted.status, 200);
      t.deepEqual((await admins()).sort(), [survivor.userId, rival.userId].sort());
      const [a, b] = await Promise.all([demote(rival, survivor), demote(survivor, rival)]);
      t.deepEqual([a.status, b.status].sort(), [200, 403], `round ${round}`);
      const loser = a.status === 200 ? b : a;
      t.is(loser.body.error_code, 'FORBIDDEN');
      const left = await admins();
      t.is(left.length, 1, `round ${round}: admins left ${left.length}`);
      survivor = left[0] === survivor.userId ? survivor : rival;
    }
  });

  test(name('the only admin cannot be demoted: not by themselves, nor by an admin demoted a moment ago'), async (t) => {
    const own = await startApp(kind);
    t.teardown(() => own.close());
    const root = await adminLogin(own);
    const patch = (id: string, role: string, token: string) =>
      own.request('PATCH', `/api/admin/users/${id}`, { token, body: { role } });
    isError(t, await patch(root.userId, 'staff', root.token), 403, 'FORBIDDEN');
    const former = await newUser(own);
    t.is((await patch(former.userId, 'admin', root.token)).status, 200);
    t.is((await patch(former.userId, 'customer', root.token)).status, 200);
    isError(t, await patch(root.userId, 'customer', former.token), 403, 'FORBIDDEN');
    const profile = await own.request('GET', '/api/users/me', { token: root.token });
    t.is(profile.body.data.role, 'admin');
  });
}
