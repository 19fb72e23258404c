import { randomUUID } from 'node:crypto';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import Koa from 'koa';
import { createLogger } from '../src/kernel/logger.js';
import { correlationId, errors } from '../src/kernel/middleware.js';
import { DATABASES, request, sharedApp } from './helpers/app.js';
import { BAD_UUIDS, invalid, isError, isInvalid, MALFORMED_JSON, rowCounts } from './helpers/assert.js';
import { streamed } from './helpers/stream.js';
import { claimsOf, expired, sign, unsigned } from './helpers/tokens.js';
import { adminLogin, login, newUser, type TestUser } from './helpers/users.js';

/**
 * Every user endpoint against malformed, mistyped, oversized and hostile input. Each refusal is
 * the documented 4xx in the envelope, and the module's tables are counted before and after to
 * show that nothing was written. Serial, because those counts cover the whole module.
 */

type Auth = 'public' | 'user' | 'admin' | 'refresh';
/** What a hostile string in a field leads to: an error code, or legitimate acceptance. */
type Outcome = { status: number; code: string } | 'accepted';

interface Endpoint {
  name: string;
  method: 'GET' | 'POST' | 'PATCH';
  path: string;
  auth: Auth;
  /** A valid body, for endpoints that take one. */
  body?: Record<string, unknown>;
  /** A valid query, for endpoints that take one. */
  query?: Record<string, string>;
  required?: string[];
  wrongTypes?: Record<string, unknown[]>;
  strings?: Record<string, Outcome>;
}

/** Each at least 8 characters, so that it is also a valid password. */
const HOSTILE = [
  "' OR 1=1 --",
  '"; DROP TABLE users; --',
  '<script>alert(1)</script>',
  "admin'--",
  '50%_off\\x',
  '{"$gt": ""}',
];

interface Fixture {
  user: TestUser;
  admin: TestUser;
  target: TestUser;
}

function endpoints(f: Fixture): Endpoint[] {
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
      path: `/api/admin/users/${f.target.userId}`,
      auth: 'admin',
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
      strings: { user_id: { status: 400, code: 'INVALID_UUID' }, amount: invalid, reason: 'accepted' },
    },
  ];
}

const withBody = (e: Endpoint) => e.method !== 'GET';

for (const kind of DATABASES) {
  const app = sharedApp(kind);
  const name = (s: string) => `[${kind}] ${s}`;

  async function fixture(): Promise<Fixture> {
    const [user, target] = await Promise.all([newUser(app), newUser(app)]);
    return { user, target, admin: await adminLogin(app) };
  }

  /** A token for the endpoint's access rule; user sessions are fresh, as some requests end them. */
  async function tokenFor(auth: Auth, f: Fixture): Promise<string | undefined> {
    if (auth === 'public') return undefined;
    if (auth === 'admin') return f.admin.token;
    const session = await login(app, f.user.email, f.user.password);
    return auth === 'refresh' ? session.refreshToken : session.token;
  }

  const pathWith = (e: Endpoint, query?: Record<string, string>) =>
    query ? `${e.path}?${new URLSearchParams(query)}` : e.path;

  /** Sends a request to an endpoint with the right token unless the options say otherwise. */
  async function send(
    f: Fixture,
    e: Endpoint,
    options: { body?: unknown; raw?: string; headers?: Record<string, string>; query?: Record<string, string> } = {},
  ) {
    const token = await tokenFor(e.auth, f);
    return app.request(e.method, pathWith(e, options.query ?? e.query), { token, ...options });
  }

  /** Runs `body` and asserts that no user, ledger row or operation was written meanwhile. */
  async function writesNothing(t: ExecutionContext, body: () => Promise<void>) {
    const before = await rowCounts(app);
    await body();
    t.deepEqual(await rowCounts(app), before, 'nothing is written');
  }

  test.serial(name('the valid requests of the table succeed (the table itself is right)'), async (t) => {
    const f = await fixture();
    for (const e of endpoints(f)) {
      const res = await send(f, e, e.body ? { body: e.body } : {});
      t.true(res.status < 300, `${e.name}: ${res.status} ${JSON.stringify(res.body)}`);
    }
  });

  test.serial(name('malformed JSON and non-object JSON answer 400 VALIDATION_ERROR'), async (t) => {
    const f = await fixture();
    await writesNothing(t, async () => {
      for (const e of endpoints(f).filter(withBody)) {
        for (const raw of MALFORMED_JSON) {
          const res = await send(f, e, { raw, headers: { 'content-type': 'application/json' } });
          isError(t, res, 400, 'VALIDATION_ERROR');
        }
      }
    });
  });

  test.serial(name('fields of the wrong type answer 400 naming the field'), async (t) => {
    const f = await fixture();
    await writesNothing(t, async () => {
      for (const e of endpoints(f)) {
        for (const [field, values] of Object.entries(e.wrongTypes ?? {})) {
          for (const value of values) {
            const res = e.body
              ? await send(f, e, { body: { ...e.body, [field]: value } })
              : await send(f, e, { query: { ...e.query, [field]: String(value) } });
            isInvalid(t, res, field);
          }
        }
      }
    });
  });

  test.serial(name('missing fields and empty bodies answer 400 naming the field'), async (t) => {
    const f = await fixture();
    await writesNothing(t, async () => {
      for (const e of endpoints(f)) {
        for (const field of e.required ?? []) {
          const { [field]: _, ...rest } = e.body ?? {};
          isInvalid(t, await send(f, e, { body: rest }), field);
          isError(t, await send(f, e, { body: {} }), 400, 'VALIDATION_ERROR');
          isError(t, await send(f, e), 400, 'VALIDATION_ERROR');
        }
      }
      const patch = endpoints(f).find((e) => e.name === 'admin user patch')!;
      isError(t, await send(f, patch, { body: {} }), 400, 'VALIDATION_ERROR');
    });
  });

  test.serial(name('extra fields in a body or a query answer 400 naming the field'), async (t) => {
    const f = await fixture();
    await writesNothing(t, async () => {
      for (const e of endpoints(f)) {
        if (withBody(e)) isInvalid(t, await send(f, e, { body: { ...e.body, is_admin: true } }), 'is_admin');
        isInvalid(t, await send(f, e, { query: { ...e.query, debug: '1' } }), 'debug');
      }
    });
  });

  test.serial(name('a body over 64 KiB answers 413 PAYLOAD_TOO_LARGE, with or without Content-Length'), async (t) => {
    const f = await fixture();
    await writesNothing(t, async () => {
      for (const e of endpoints(f).filter(withBody)) {
        const big = { ...e.body, padding: 'x'.repeat(64 * 1024) };
        isError(t, await send(f, e, { body: big }), 413, 'PAYLOAD_TOO_LARGE');
        const token = await tokenFor(e.auth, f);
        const chunks = Array.from({ length: 70 }, (_, i) => (i === 0 ? '{"padding":"' : 'y'.repeat(1024)));
        const res = await streamed(`${app.url}${e.path}`, chunks, {
          method: e.method,
          headers: token ? { authorization: `Bearer ${token}` } : {},
        });
        isError(t, res, 413, 'PAYLOAD_TOO_LARGE');
      }
    });
  });

  test.serial(name('bodies that are not JSON answer 415 UNSUPPORTED_MEDIA_TYPE'), async (t) => {
    const f = await fixture();
    const types: [string, string][] = [
      ['text/plain', JSON.stringify({ email: 'a@b.c' })],
      ['application/x-www-form-urlencoded', 'email=a%40b.c&password=x'],
      ['multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--xyz--'],
      ['application/xml', '<user><email>a@b.c</email></user>'],
      ['application/octet-stream', 'binary'],
    ];
    await writesNothing(t, async () => {
      for (const e of endpoints(f).filter(withBody)) {
        for (const [type, raw] of types) {
          isError(t, await send(f, e, { raw, headers: { 'content-type': type } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
        }
      }
    });
  });

  test.serial(name('bodies that fail to decompress answer 400; unknown encodings 415'), async (t) => {
    const f = await fixture();
    const register = endpoints(f)[0];
    const json = { 'content-type': 'application/json' };
    await writesNothing(t, async () => {
      for (const encoding of ['gzip', 'deflate', 'br']) {
        const res = await send(f, register, {
          raw: 'not compressed',
          headers: { ...json, 'content-encoding': encoding },
        });
        isError(t, res, 400, 'VALIDATION_ERROR');
      }
      const odd = await send(f, register, { raw: '{}', headers: { ...json, 'content-encoding': 'x-unknown' } });
      isError(t, odd, 415, 'UNSUPPORTED_MEDIA_TYPE');
    });
    // Well-formed compressed JSON is fine.
    const login = endpoints(f)[1];
    const body = JSON.stringify({ email: f.user.email, password: f.user.password });
    for (const [encoding, bytes] of [
      ['gzip', gzipSync(body)],
      ['br', brotliCompressSync(body)],
    ] as const) {
      const res = await fetch(`${app.url}${login.path}`, {
        method: 'POST',
        headers: { ...json, 'content-encoding': encoding },
        body: bytes,
      });
      t.is(res.status, 200, encoding);
    }
  });

  test.serial(name('malformed UUIDs in the path or the body answer 400 INVALID_UUID'), async (t) => {
    const f = await fixture();
    await writesNothing(t, async () => {
      for (const bad of BAD_UUIDS) {
        const path = await app.request('PATCH', `/api/admin/users/${encodeURIComponent(bad)}`, {
          token: f.admin.token,
          body: { is_flagged: true },
        });
        isInvalid(t, path, 'user_id', 'INVALID_UUID');
        const body = await app.request('POST', '/api/admin/credits', {
          token: f.admin.token,
          body: { user_id: bad, amount: 5, reason: 'bad id' },
        });
        isInvalid(t, body, 'user_id', 'INVALID_UUID');
      }
    });
  });

  test.serial(name('SQL- and script-like strings get a clean 4xx, or are stored verbatim'), async (t) => {
    const f = await fixture();
    const before = await rowCounts(app);
    let accepted = { users: 0, ledger: 0 };
    for (const e of endpoints(f)) {
      for (const [field, outcome] of Object.entries(e.strings ?? {})) {
        for (const hostile of HOSTILE) {
          const res = e.body
            ? await send(f, e, { body: { ...e.body, [field]: hostile } })
            : await send(f, e, { query: { ...e.query, [field]: hostile } });
          const what = `${e.name}.${field} = ${hostile}`;
          if (outcome === 'accepted') {
            t.true(res.status === 200 || res.status === 201, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
            t.is(res.body.success, true, what);
            if (e.name === 'admin credits') accepted = { ...accepted, ledger: accepted.ledger + 1 };
          } else {
            isError(t, res, outcome.status, outcome.code);
          }
        }
      }
    }
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
    // The register rows of the table above (password, full_name) and of this loop.
    accepted = { ...accepted, users: 3 * HOSTILE.length };
    // The reasons came back verbatim as the ledger's reference ids.
    const ledger = await app.request('GET', `/api/credits/transactions?per_page=100`, { token: f.target.token });
    const references = new Set(ledger.body.data.map((e: { reference_id: string }) => e.reference_id));
    for (const hostile of HOSTILE) t.true(references.has(hostile), hostile);
    const after = await rowCounts(app);
    t.is(after.users, before.users + accepted.users);
    t.is(after.ledger, before.ledger + accepted.ledger);
    // No table was dropped, no row read by the injection attempts.
    const list = await app.request('GET', `/api/admin/users?email=${encodeURIComponent("' OR 1=1 --")}`, {
      token: f.admin.token,
    });
    t.deepEqual(list.body.data, []);
  });

  test.serial(name('text with a NUL character answers 400, on every database'), async (t) => {
    const f = await fixture();
    const [register, login_, , logout, , list, , , , credits] = endpoints(f);
    await writesNothing(t, async () => {
      isInvalid(t, await send(f, register, { body: { ...register.body, full_name: 'a\u0000b' } }), 'full_name');
      isInvalid(t, await send(f, register, { body: { ...register.body, password: 'pass\u0000word' } }), 'password');
      isInvalid(t, await send(f, login_, { body: { ...login_.body, password: 'pass\u0000word' } }), 'password');
      isInvalid(t, await send(f, logout, { body: { refresh_token: '\u0000' } }), 'refresh_token');
      isInvalid(t, await send(f, list, { query: { email: 'a\u0000b' } }), 'email');
      isInvalid(t, await send(f, credits, { body: { ...credits.body, reason: 'x\u0000y' } }), 'reason');
    });
  });

  test.serial(name('unknown routes answer 404 NOT_FOUND; known paths with a wrong method 405'), async (t) => {
    const f = await fixture();
    await writesNothing(t, async () => {
      for (const path of ['/api/nope', '/api', '/api/auth', '/api/users/me/extra', '/api/admin/users/x/y', '/nope']) {
        isError(t, await app.request('GET', path, { token: f.admin.token }), 404, 'NOT_FOUND');
      }
      isError(t, await app.request('POST', '/api/nope', { body: {} }), 404, 'NOT_FOUND');
      const wrong: [string, string][] = [
        ['GET', '/api/auth/register'],
        ['PUT', '/api/auth/login'],
        ['GET', '/api/auth/refresh'],
        ['DELETE', '/api/users/me'],
        ['POST', '/api/users/me'],
        ['DELETE', `/api/admin/users/${f.target.userId}`],
        ['PUT', `/api/admin/users/${f.target.userId}`],
        ['GET', '/api/admin/credits'],
        ['POST', '/api/credits/balance'],
        ['PATCH', '/api/credits/transactions'],
        ['POST', '/health'],
      ];
      for (const [method, path] of wrong) {
        const res = await app.request(method, path, { token: f.admin.token });
        isError(t, res, 405, 'METHOD_NOT_ALLOWED');
        t.truthy(res.headers.get('allow'), `${method} ${path} says what is allowed`);
      }
    });
  });

  test.serial(name('expired, forged, unsigned and wrong-type tokens answer 401 on every endpoint'), async (t) => {
    const f = await fixture();
    const session = await login(app, f.user.email, f.user.password);
    await writesNothing(t, async () => {
      for (const e of endpoints(f).filter((x) => x.auth !== 'public')) {
        const real = e.auth === 'refresh' ? session.refreshToken : e.auth === 'admin' ? f.admin.token : session.token;
        const claims = claimsOf(real);
        const cases: [string | undefined, string][] = [
          [undefined, 'UNAUTHORIZED'],
          [await sign(app, expired(real)), 'TOKEN_EXPIRED'],
          [await sign(app, claims, { secret: 'a-secret-that-is-not-the-server-one' }), 'UNAUTHORIZED'],
          [unsigned(claims), 'UNAUTHORIZED'],
          [await sign(app, claims, { alg: 'HS512' }), 'UNAUTHORIZED'],
          [e.auth === 'refresh' ? session.token : session.refreshToken, 'UNAUTHORIZED'],
          ['garbage', 'UNAUTHORIZED'],
        ];
        for (const [token, code] of cases) {
          const res = await app.request(e.method, pathWith(e, e.query), { token, body: e.body });
          isError(t, res, 401, code);
        }
      }
    });
  });

  test.serial(name('X-Correlation-ID is echoed when given and made when absent, on errors too'), async (t) => {
    const given = `test-${randomUUID()}`;
    for (const path of ['/health', '/api/users/me', '/api/nope']) {
      const echoed = await app.request('GET', path, { headers: { 'x-correlation-id': given } });
      t.is(echoed.headers.get('x-correlation-id'), given, path);
      const made = await app.request('GET', path);
      t.regex(made.headers.get('x-correlation-id') ?? '', /^[0-9a-f-]{36}$/, path);
    }
    const a = await app.request('GET', '/health');
    const b = await app.request('GET', '/health');
    t.not(a.headers.get('x-correlation-id'), b.headers.get('x-correlation-id'));
    // An id that could forge log lines is replaced, not echoed.
    for (const bad of ['has spaces', 'x'.repeat(129), 'a\tb']) {
      const res = await app.request('GET', '/health', { headers: { 'x-correlation-id': bad } });
      t.not(res.headers.get('x-correlation-id'), bad);
      t.regex(res.headers.get('x-correlation-id') ?? '', /^[0-9a-f-]{36}$/);
    }
  });
}

test('an unexpected error answers 500 INTERNAL_ERROR naming the correlation id, with no internals', async (t) => {
  const app = new Koa();
  app.silent = true;
  app.use(correlationId());
  app.use(errors(createLogger('silent')));
  app.use(() => {
    const err = new TypeError('secret detail at /srv/app/src/db.ts:12:3');
    (err as { sql?: string }).sql = 'select password_hash from users';
    throw err;
  });
  const server = app.listen(0, '127.0.0.1');
  t.teardown(() => server.close());
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as { port: number };
  const res = await request(`http://127.0.0.1:${port}`, 'GET', '/boom', { headers: { 'x-correlation-id': 'cid-42' } });
  isError(t, res, 500, 'INTERNAL_ERROR');
  t.true(res.body.message.includes('cid-42'));
  t.false(JSON.stringify(res.body).includes('secret'));
  t.false(JSON.stringify(res.body).includes('password_hash'));
});
