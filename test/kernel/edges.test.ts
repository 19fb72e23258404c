import test from 'ava';
import { BODY_LIMIT } from '../../src/kernel/middleware.js';
import { DATABASES, sharedApp, startApp } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import { standIn } from '../helpers/stand-in.js';

/**
 * Defects found by a review and an attack: what a browser sees of a refused body, what a
 * stranger sees of /internal, and asset names that are the names of object properties.
 */

const ORIGIN = { origin: 'https://app.example.com' };

for (const kind of DATABASES) {
  const app = sharedApp(kind);
  const name = (s: string) => `[${kind}] ${s}`;

  test(
    name('a refused body (400, 413, 415) carries the CORS and security headers, so a browser can read it'),
    async (t) => {
      const refusals = [
        { raw: '{"email":', headers: { 'content-type': 'application/json' }, status: 400 },
        { raw: 'x'.repeat(BODY_LIMIT + 1), headers: { 'content-type': 'application/json' }, status: 413 },
        { raw: 'email=a', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415 },
      ];
      for (const r of refusals) {
        const res = await app.request('POST', '/api/auth/login', { raw: r.raw, headers: { ...r.headers, ...ORIGIN } });
        t.is(res.status, r.status);
        t.is(res.headers.get('access-control-allow-origin'), '*', `${r.status} has CORS`);
        t.is(res.headers.get('x-content-type-options'), 'nosniff', `${r.status} has the security headers`);
        t.regex(res.headers.get('access-control-expose-headers') ?? '', /X-Correlation-ID/i);
      }
    },
  );

  test(
    name('without the service credential everything under /internal is 401: any method, known or unknown path'),
    async (t) => {
      const paths = [
        '/internal',
        '/internal/',
        '/internal/user/getUser',
        '/internal/user/nope',
        '/internal/nope',
        '/internal/event/holdSeat',
        '/internal/../internal/user/getUser',
        '/INTERNAL/user/getUser',
        '/Internal/User/GetUser',
        '/internal/user/getUser/',
        '/internal/user/getUser?x=1',
      ];
      for (const path of paths) {
        for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH']) {
          const res = await app.request(method, path, method === 'GET' ? {} : { body: {} });
          isError(t, res, 401, 'UNAUTHORIZED');
        }
      }
      const wrong = await app.request('POST', '/internal/user/getUser', {
        body: {},
        headers: { 'x-service-token': 'x'.repeat(app.kernel.config.serviceToken.length) },
      });
      isError(t, wrong, 401, 'UNAUTHORIZED');
      const bearer = await app.request('GET', '/internal/user/nope', {
        headers: { authorization: `Bearer ${app.kernel.config.serviceToken}` },
      });
      isError(t, bearer, 401, 'UNAUTHORIZED');
    },
  );

  test(name('with the credential, an unknown internal path is 404 and a wrong method 405'), async (t) => {
    const headers = { 'x-service-token': app.kernel.config.serviceToken };
    isError(t, await app.request('POST', '/internal/user/nope', { body: {}, headers }), 404, 'NOT_FOUND');
    isError(t, await app.request('GET', '/internal/user/getUser', { headers }), 405, 'METHOD_NOT_ALLOWED');
  });

  test(name('Swagger UI asset names that are object properties answer 404, not 500'), async (t) => {
    for (const file of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'nope.js']) {
      isError(t, await app.request('GET', `/docs/assets/local/${file}`), 404, 'NOT_FOUND');
    }
    const css = await fetch(`${app.url}/docs/assets/local/swagger-ui.min.css`);
    t.is(css.status, 200);
    t.regex(css.headers.get('content-type') ?? '', /text\/css/);
  });

  test(name('/health/live answers from the process alone; /health checks the database'), async (t) => {
    const live = await app.request('GET', '/health/live');
    t.is(live.status, 200);
    t.like(live.body, { status: 'alive', modules: ['user', 'order', 'event'] });
    t.is(live.body.checks, undefined, 'it checks nothing further');
    const health = await app.request('GET', '/health');
    t.like(health.body, { status: 'healthy', checks: { database: 'connected' } });
  });
}

test('the operational routes answer 405 to a wrong method', async (t) => {
  const app = await startApp('sqlite', { MODULES: 'user' });
  t.teardown(() => app.close());
  for (const path of ['/health', '/health/live', '/metrics', '/openapi.json', '/docs']) {
    const res = await app.request('POST', path, { body: {} });
    isError(t, res, 405, 'METHOD_NOT_ALLOWED');
    t.regex(res.headers.get('allow') ?? '', /GET/);
  }
});

test('/health asks a peer for /health/live only, so slices that check each other cannot recurse', async (t) => {
  const asked: string[] = [];
  // A user slice whose deep /health would fail: only its liveness may be asked.
  const peer = await standIn(t, (req) => {
    asked.push(req.url ?? '');
    return { status: req.url === '/health/live' ? 200 : 500 };
  });
  const app = await startApp('sqlite', { MODULES: 'event', USER_URL: peer });
  t.teardown(() => app.close());
  const health = await app.request('GET', '/health');
  t.is(health.status, 200);
  t.like(health.body, { status: 'healthy', checks: { database: 'connected', user: 'reachable' } });
  // (The slice's view of sessions asks the user slice too, on /internal/user/sessionChanges.)
  t.deepEqual([...new Set(asked.filter((url) => !url.startsWith('/internal/')))], ['/health/live']);
});
