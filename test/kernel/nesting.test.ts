import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { BODY_LIMIT } from '../../src/kernel/middleware.js';
import { DATABASES, type Response, sharedApp } from '../helpers/app.js';
import { isInvalid } from '../helpers/assert.js';
import { newUser } from '../helpers/users.js';

/** `{"<field>": [[…]]}`: arrays and objects `depth` deep in all, the outer object included. */
const arrays = (field: string, depth: number) => `{"${field}":${'['.repeat(depth - 1)}${']'.repeat(depth - 1)}}`;
/** `{"<field>": {"a": {"a": … 1}}}`, `depth` objects deep in all. */
const objects = (field: string, depth: number) => `{"${field}":${'{"a":'.repeat(depth - 2)}{}${'}'.repeat(depth - 1)}`;

/** The deepest body of each kind that still fits in the body limit. */
const deepestArrays = (field: string) => {
  const depth = Math.floor((BODY_LIMIT - `{"${field}":}`.length) / 2) + 1;
  return arrays(field, depth);
};
const deepestObjects = (field: string) => {
  const depth = Math.floor((BODY_LIMIT - `{"${field}":{}}`.length) / '{"a":}'.length) + 2;
  return objects(field, depth);
};

const TOO_DEEP = [33, 5_000, 8_000];

/** The depth limit answered: 400, naming the field and the limit. */
function isTooDeep(t: ExecutionContext, res: Response, field: string) {
  isInvalid(t, res, field);
  t.regex(JSON.stringify(res.body.details), /32/, JSON.stringify(res.body));
}

for (const kind of DATABASES) {
  const app = sharedApp(kind);
  const name = (s: string) => `[${kind}] ${s}`;

  const login = (raw: string) =>
    app.request('POST', '/api/auth/login', { raw, headers: { 'content-type': 'application/json' } });
  const internal = (raw: string) =>
    app.request('POST', '/internal/user/getUser', {
      raw,
      headers: { 'content-type': 'application/json', 'x-service-token': app.kernel.config.serviceToken },
    });

  test(name('a public body nested deeper than 32 levels is 400 VALIDATION_ERROR that names the limit'), async (t) => {
    for (const depth of TOO_DEEP) {
      isTooDeep(t, await login(arrays('email', depth)), 'email');
      isTooDeep(t, await login(objects('email', depth)), 'email');
    }
    const deepest = deepestArrays('email');
    t.true(deepest.length <= BODY_LIMIT && deepest.length > BODY_LIMIT - 2, `${deepest.length} bytes`);
    isTooDeep(t, await login(deepest), 'email');
    isTooDeep(t, await login(deepestObjects('email')), 'email');
  });

  test(name('a body 32 levels deep reaches the route schema, which refuses the wrong type'), async (t) => {
    for (const raw of [arrays('email', 32), objects('email', 32)]) {
      const res = await login(raw);
      isInvalid(t, res, 'email');
      t.notRegex(JSON.stringify(res.body.details), /32/, JSON.stringify(res.body));
    }
  });

  test(
    name('an /internal body nested deeper than 32 levels is 400 VALIDATION_ERROR that names the limit'),
    async (t) => {
      for (const depth of TOO_DEEP) {
        isTooDeep(t, await internal(arrays('userId', depth)), 'userId');
        isTooDeep(t, await internal(objects('userId', depth)), 'userId');
      }
      isTooDeep(t, await internal(deepestArrays('userId')), 'userId');
      isTooDeep(t, await internal(deepestObjects('userId')), 'userId');
      // 32 levels reach the port's own argument check.
      const res = await internal(arrays('userId', 32));
      isInvalid(t, res, 'userId');
      t.notRegex(JSON.stringify(res.body.details), /32/);
    },
  );

  test(name('a NUL deep in an allowed body is found and named'), async (t) => {
    const res = await login(`{"email":${'['.repeat(31)}"a\\u0000b"${']'.repeat(31)}}`);
    isInvalid(t, res, `email${'[0]'.repeat(31)}`);
    t.regex(JSON.stringify(res.body.details), /NUL/);
  });

  test(name('ordinary requests sent among a storm of deep bodies get their normal answers'), async (t) => {
    const user = await newUser(app);
    const deep = deepestArrays('email');
    const storm = Array.from({ length: 60 }, () => login(deep));
    const ordinary = [
      app.request('GET', '/api/credits/balance', { token: user.token }),
      app.request('POST', '/api/auth/login', { body: { email: user.email, password: user.password } }),
      app.request('GET', `/api/events/${randomUUID()}`),
    ];
    const [balance, loggedIn, missing] = await Promise.all(ordinary);
    for (const res of await Promise.all(storm)) isTooDeep(t, res, 'email');
    t.is(balance.status, 200, JSON.stringify(balance.body));
    t.is(balance.body.data.credit_balance, 0);
    t.is(loggedIn.status, 200, JSON.stringify(loggedIn.body));
    t.is(missing.status, 404, JSON.stringify(missing.body));
  });
}
