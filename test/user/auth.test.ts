import { randomUUID } from 'node:crypto';
import test from 'ava';
import { SESSION_VIEW_MS } from '../../src/modules/user/accounts.js';
import { sharedApp, startApp, TARGETS } from '../helpers/app.js';
import { isError, isInvalid, USER_VIEW_KEYS } from '../helpers/assert.js';
import { claimsOf, expired, sign, unsigned } from '../helpers/tokens.js';
import { adminLogin, login, newUser } from '../helpers/users.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const PASSWORD = 'correct-horse-1';

const uniqueEmail = () => `u-${randomUUID()}@test.local`;

for (const kind of TARGETS) {
  const app = sharedApp(kind);
  const name = (s: string) => `[${kind}] ${s}`;

  const register = (body: Record<string, unknown>) => app.request('POST', '/api/auth/register', { body });
  const me = (token: string) => app.request('GET', '/api/users/me', { token });
  const refresh = (token: string) => app.request('POST', '/api/auth/refresh', { token });

  test(name('register answers 201 with the new id and the email in lower case'), async (t) => {
    const local = `Mixed.Case-${randomUUID()}`;
    const res = await register({ email: `  ${local}@Test.LOCAL `, phone: '+6591234567', password: PASSWORD });
    t.is(res.status, 201);
    t.is(res.body.success, true);
    t.regex(res.body.data.user_id, UUID);
    t.is(res.body.data.email, `${local.toLowerCase()}@test.local`);
    t.is(typeof res.body.data.message, 'string');
    const u = await login(app, `${local}@test.local`, PASSWORD);
    t.is(u.userId, res.body.data.user_id);
  });

  test(name('register refuses a taken email with 409 EMAIL_ALREADY_EXISTS, whatever its case'), async (t) => {
    const email = uniqueEmail();
    t.is((await register({ email, phone: '+6591234567', password: PASSWORD })).status, 201);
    isError(t, await register({ email, phone: '+6598765432', password: PASSWORD }), 409, 'EMAIL_ALREADY_EXISTS');
    const shouted = await register({ email: email.toUpperCase(), phone: '+6591234567', password: PASSWORD });
    isError(t, shouted, 409, 'EMAIL_ALREADY_EXISTS');
  });

  test(name('register validates the email, the E.164 phone and an 8-128 character password'), async (t) => {
    const base = { email: uniqueEmail(), phone: '+6591234567', password: PASSWORD };
    for (const phone of ['91234567', '+0123456789', '+65 9123 4567', '+12345', '+1234567890123456', '', 6591234567]) {
      isInvalid(t, await register({ ...base, phone }), 'phone');
    }
    for (const email of ['not-an-email', 'a@', '@test.local', '', 42]) {
      isInvalid(t, await register({ ...base, email }), 'email');
    }
    isInvalid(t, await register({ ...base, password: 'short-7' }), 'password');
    isInvalid(t, await register({ ...base, password: 'x'.repeat(129) }), 'password');
    isInvalid(t, await register({ email: base.email, phone: base.phone }), 'password');
    // The bounds themselves are accepted.
    t.is((await register({ ...base, email: uniqueEmail(), password: '8-chars!' })).status, 201);
    t.is((await register({ ...base, email: uniqueEmail(), password: 'y'.repeat(128) })).status, 201);
    t.is((await register({ ...base, email: uniqueEmail(), full_name: null })).status, 201);
    isInvalid(t, await register({ ...base, email: uniqueEmail(), full_name: 'z'.repeat(201) }), 'full_name');
  });

  test(name('login returns a Bearer token pair for 900 seconds and the user'), async (t) => {
    const email = uniqueEmail();
    await register({ email, phone: '+6591234567', password: PASSWORD, full_name: 'Login Person' });
    const res = await app.request('POST', '/api/auth/login', {
      body: { email: email.toUpperCase(), password: PASSWORD },
    });
    t.is(res.status, 200);
    const d = res.body.data;
    t.is(d.token_type, 'Bearer');
    t.is(d.expires_in, 900);
    t.deepEqual(Object.keys(d.user).sort(), ['credit_balance', 'email', 'role', 'user_id']);
    t.like(d.user, { email, role: 'customer', credit_balance: 0 });
    const access = claimsOf(d.access_token);
    const refreshClaims = claimsOf(d.refresh_token);
    t.like(access, { sub: d.user.user_id, role: 'customer', type: 'access' });
    t.like(refreshClaims, { sub: d.user.user_id, type: 'refresh', sid: access.sid });
    t.is((access.exp as number) - (access.iat as number), 900);
    t.is((refreshClaims.exp as number) - (refreshClaims.iat as number), 7 * 24 * 3600);
    t.regex(access.jti as string, UUID);
    t.not(access.jti, refreshClaims.jti);
  });

  test(name('a wrong password and an unknown email get the same 401 UNAUTHORIZED'), async (t) => {
    const u = await newUser(app);
    const wrong = await app.request('POST', '/api/auth/login', {
      body: { email: u.email, password: 'wrong-password' },
    });
    const unknown = await app.request('POST', '/api/auth/login', {
      body: { email: uniqueEmail(), password: PASSWORD },
    });
    isError(t, wrong, 401, 'UNAUTHORIZED');
    isError(t, unknown, 401, 'UNAUTHORIZED');
    t.is(wrong.body.message, unknown.body.message);
  });

  test(name('GET /api/users/me returns exactly the documented profile'), async (t) => {
    const u = await newUser(app, { phone: '+14155550123', full_name: 'Ada Lovelace' });
    const res = await me(u.token);
    t.is(res.status, 200);
    t.deepEqual(Object.keys(res.body.data).sort(), USER_VIEW_KEYS);
    t.like(res.body.data, {
      user_id: u.userId,
      email: u.email,
      phone: '+14155550123',
      full_name: 'Ada Lovelace',
      role: 'customer',
      credit_balance: 0,
      is_flagged: false,
    });
    t.regex(res.body.data.created_at, ISO_UTC);
  });

  test(name('refresh rotates the pair; the new tokens work'), async (t) => {
    const u = await newUser(app);
    const res = await refresh(u.refreshToken);
    t.is(res.status, 200);
    const d = res.body.data;
    t.is(d.expires_in, 900);
    t.not(d.access_token, u.token);
    t.not(d.refresh_token, u.refreshToken);
    t.is(claimsOf(d.refresh_token).sid, claimsOf(u.refreshToken).sid);
    t.is((await me(d.access_token)).status, 200);
    t.is((await refresh(d.refresh_token)).status, 200);
  });

  test(name('a refresh token used twice is refused and ends the session: the newest tokens stop too'), async (t) => {
    const u = await newUser(app);
    const first = await refresh(u.refreshToken);
    t.is(first.status, 200);
    isError(t, await refresh(u.refreshToken), 401, 'UNAUTHORIZED');
    isError(t, await refresh(first.body.data.refresh_token), 401, 'UNAUTHORIZED');
    isError(t, await me(first.body.data.access_token), 401, 'UNAUTHORIZED');
    isError(t, await me(u.token), 401, 'UNAUTHORIZED');
    // Another session of the same user is not affected.
    const again = await login(app, u.email, u.password);
    t.is((await me(again.token)).status, 200);
  });

  test(name('concurrent registrations of one email: exactly one 201, the others 409'), async (t) => {
    const email = uniqueEmail();
    const all = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        register({ email: i % 2 ? email : email.toUpperCase(), phone: '+6591234567', password: PASSWORD }),
      ),
    );
    t.deepEqual(all.map((r) => r.status).sort(), [201, 409, 409, 409, 409, 409]);
    for (const r of all.filter((x) => x.status === 409)) isError(t, r, 409, 'EMAIL_ALREADY_EXISTS');
  });

  test(name('one refresh token sent twice at once is rotated once'), async (t) => {
    const u = await newUser(app);
    const both = await Promise.all([refresh(u.refreshToken), refresh(u.refreshToken)]);
    t.deepEqual(both.map((r) => r.status).sort(), [200, 401]);
  });

  test(name('a refresh token is not an access token, nor the other way round'), async (t) => {
    const u = await newUser(app);
    isError(t, await me(u.refreshToken), 401, 'UNAUTHORIZED');
    isError(t, await refresh(u.token), 401, 'UNAUTHORIZED');
    // Neither refusal used the token up.
    t.is((await me(u.token)).status, 200);
    t.is((await refresh(u.refreshToken)).status, 200);
  });

  test(name('logout revokes the access and the refresh token'), async (t) => {
    const u = await newUser(app);
    const out = await app.request('POST', '/api/auth/logout', { token: u.token });
    t.is(out.status, 200);
    t.is(typeof out.body.data.message, 'string');
    isError(t, await me(u.token), 401, 'UNAUTHORIZED');
    isError(t, await refresh(u.refreshToken), 401, 'UNAUTHORIZED');
    isError(t, await app.request('POST', '/api/auth/logout', { token: u.token }), 401, 'UNAUTHORIZED');
  });

  test(
    name('a session revoked elsewhere (another instance of the user module) stops working within a second'),
    async (t) => {
      const u = await newUser(app);
      t.is((await me(u.token)).status, 200, 'the check is now remembered in this process');
      // As another instance's logout would: the row changes, this process is not told.
      const db = app.kernel.databases.get('user')!;
      const { sid } = claimsOf(u.token) as { sid: string };
      await db.all(`update ${db.table('sessions')} set revoked_at = ? where id = ?`, [db.time(Date.now()), sid]);
      await new Promise((r) => setTimeout(r, SESSION_VIEW_MS + 100));
      isError(t, await me(u.token), 401, 'UNAUTHORIZED');
    },
  );

  test(name('logout with {refresh_token} also ends the session that token belongs to'), async (t) => {
    const u = await newUser(app);
    const other = await login(app, u.email, u.password);
    const stranger = await newUser(app);
    const out = await app.request('POST', '/api/auth/logout', {
      token: u.token,
      body: { refresh_token: other.refreshToken },
    });
    t.is(out.status, 200);
    isError(t, await me(other.token), 401, 'UNAUTHORIZED');
    isError(t, await refresh(other.refreshToken), 401, 'UNAUTHORIZED');
    // Someone else's refresh token in the body ends nothing of theirs.
    const third = await login(app, u.email, u.password);
    await app.request('POST', '/api/auth/logout', {
      token: third.token,
      body: { refresh_token: stranger.refreshToken },
    });
    t.is((await me(stranger.token)).status, 200);
  });

  test(name('an expired access token answers 401 TOKEN_EXPIRED; so does an expired refresh token'), async (t) => {
    const u = await newUser(app);
    isError(t, await me(await sign(app, expired(u.token))), 401, 'TOKEN_EXPIRED');
    isError(t, await refresh(await sign(app, expired(u.refreshToken))), 401, 'TOKEN_EXPIRED');
    // The same claims, unexpired, are accepted: the expiry alone made the difference.
    t.is((await me(await sign(app, claimsOf(u.token)))).status, 200);
  });

  test(name('forged, unsigned and other-algorithm tokens answer 401 UNAUTHORIZED'), async (t) => {
    const u = await newUser(app);
    const claims = claimsOf(u.token);
    const [head, body, signature] = u.token.split('.');
    const elevated = Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url');
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`;
    const forged = [
      await sign(app, claims, { secret: 'not-the-server-secret-0123456789' }),
      `${head}.${elevated}.${signature}`,
      `${head}.${body}.${flipped}`,
      `${head}.${body}.`,
      unsigned(claims),
      await sign(app, claims, { alg: 'HS512' }),
      await sign(app, claims, { alg: 'HS384' }),
    ];
    for (const token of forged) isError(t, await me(token), 401, 'UNAUTHORIZED');
  });

  test(name('tokens signed with the right secret but odd claims answer 401, never 500'), async (t) => {
    const u = await newUser(app);
    const claims = claimsOf(u.token);
    const odd = [
      { ...claims, sid: randomUUID() },
      { ...claims, sub: randomUUID() },
      { ...claims, sid: 'not-a-uuid' },
      { ...claims, sub: "' OR 1=1 --" },
      { ...claims, jti: 42 },
      { ...claims, role: 'superuser' },
      { ...claims, type: 'session' },
      { ...claims, sid: undefined },
      { ...claims, exp: undefined },
    ];
    for (const c of odd) isError(t, await me(await sign(app, c)), 401, 'UNAUTHORIZED');
    const refreshClaims = claimsOf(u.refreshToken);
    isError(t, await refresh(await sign(app, { ...refreshClaims, jti: 'not-a-uuid' })), 401, 'UNAUTHORIZED');
  });

  test(name('a malformed Authorization header answers 401 UNAUTHORIZED; the scheme is case-insensitive'), async (t) => {
    const u = await newUser(app);
    for (const authorization of [
      'Bearer',
      'Bearer ',
      `Basic ${Buffer.from('a:b').toString('base64')}`,
      `Token ${u.token}`,
      u.token,
      `Bearer ${u.token} extra`,
      `Bearer  ${u.token}`,
      'Bearer not.a.jwt',
      'Bearer ***',
    ]) {
      const res = await app.request('GET', '/api/users/me', { headers: { authorization } });
      isError(t, res, 401, 'UNAUTHORIZED');
    }
    isError(t, await app.request('GET', '/api/users/me'), 401, 'UNAUTHORIZED');
    const lower = await app.request('GET', '/api/users/me', { headers: { authorization: `bearer ${u.token}` } });
    t.is(lower.status, 200);
  });

  test(name('a role change by an admin applies to the next request, without logging in again'), async (t) => {
    const admin = await adminLogin(app);
    const u = await newUser(app);
    const list = () => app.request('GET', '/api/admin/users', { token: u.token });
    isError(t, await list(), 403, 'FORBIDDEN');
    const promote = await app.request('PATCH', `/api/admin/users/${u.userId}`, {
      token: admin.token,
      body: { role: 'admin' },
    });
    t.is(promote.status, 200);
    t.is((await list()).status, 200);
    t.is((await me(u.token)).body.data.role, 'admin');
    await app.request('PATCH', `/api/admin/users/${u.userId}`, { token: admin.token, body: { role: 'customer' } });
    isError(t, await list(), 403, 'FORBIDDEN');
    // The refreshed pair carries the current role.
    const next = await refresh(u.refreshToken);
    t.is(claimsOf(next.body.data.access_token).role, 'customer');
  });
}

test('[sqlite] login and register answer 429 RATE_LIMITED past RATE_LIMIT_PER_MINUTE', async (t) => {
  const app = await startApp('sqlite', { RATE_LIMIT_PER_MINUTE: '3' });
  t.teardown(() => app.close());
  const attempt = () => app.request('POST', '/api/auth/login', { body: { email: uniqueEmail(), password: PASSWORD } });
  for (let i = 0; i < 3; i++) isError(t, await attempt(), 401, 'UNAUTHORIZED');
  const limited = await attempt();
  isError(t, limited, 429, 'RATE_LIMITED');
  t.truthy(limited.headers.get('retry-after'));
  const registers = [];
  for (let i = 0; i < 4; i++) {
    registers.push(
      await app.request('POST', '/api/auth/register', {
        body: { email: uniqueEmail(), phone: '+6591234567', password: PASSWORD },
      }),
    );
  }
  t.deepEqual(
    registers.map((r) => r.status),
    [201, 201, 201, 429],
  );
});
