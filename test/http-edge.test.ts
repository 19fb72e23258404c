import { randomUUID } from 'node:crypto';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import test from 'ava';
import Koa from 'koa';
import { createLogger } from '../src/kernel/logger.js';
import { correlationId, errors } from '../src/kernel/middleware.js';
import { DATABASES, request, sharedApp } from './helpers/app.js';
import { isError } from './helpers/assert.js';
import { newUser, userRowCounts } from './helpers/users.js';

/** The kernel's answers to what reaches no module: bodies it cannot decode, correlation ids, a crash. */

for (const kind of DATABASES) {
  const app = sharedApp(kind);
  const name = (s: string) => `[${kind}] ${s}`;

  test.serial(name('bodies that fail to decompress answer 400; unknown encodings 415'), async (t) => {
    const user = await newUser(app);
    const json = { 'content-type': 'application/json' };
    const before = await userRowCounts(app);
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const res = await app.request('POST', '/api/auth/register', {
        raw: 'not compressed',
        headers: { ...json, 'content-encoding': encoding },
      });
      isError(t, res, 400, 'VALIDATION_ERROR');
    }
    const odd = await app.request('POST', '/api/auth/register', {
      raw: '{}',
      headers: { ...json, 'content-encoding': 'x-unknown' },
    });
    isError(t, odd, 415, 'UNSUPPORTED_MEDIA_TYPE');
    t.deepEqual(await userRowCounts(app), before, 'nothing is written');
    // Well-formed compressed JSON is fine.
    const body = JSON.stringify({ email: user.email, password: user.password });
    for (const [encoding, bytes] of [
      ['gzip', gzipSync(body)],
      ['br', brotliCompressSync(body)],
    ] as const) {
      const res = await fetch(`${app.url}/api/auth/login`, {
        method: 'POST',
        headers: { ...json, 'content-encoding': encoding },
        body: bytes,
      });
      t.is(res.status, 200, encoding);
    }
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
