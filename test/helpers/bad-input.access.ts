import { isError } from './assert.js';
import { unknownPaths, unservedMethods } from './bad-input.cases.js';
import type { Check } from './bad-input.checks.js';
import { claimsOf, expired, sign, unsigned } from './tokens.js';
import { login } from './users.js';

/** The checks of where and by whom: routes and tokens. */
export const ACCESS_CHECKS = {
  routes: {
    title: 'unknown routes answer 404 NOT_FOUND; known paths with a wrong method 405 with Allow',
    async run({ t, app, f, endpoints }) {
      const unknown = ['/nope', '/api/nope', ...unknownPaths(endpoints)];
      for (const path of unknown) {
        isError(t, await app.request('GET', path, { token: f.admin.token }), 404, 'NOT_FOUND');
      }
      isError(t, await app.request('POST', '/api/nope', { body: {} }), 404, 'NOT_FOUND');
      for (const [method, path] of unservedMethods(endpoints)) {
        const res = await app.request(method, path, { token: f.admin.token });
        isError(t, res, 405, 'METHOD_NOT_ALLOWED');
        t.truthy(res.headers.get('allow'), `${method} ${path} says what is allowed`);
      }
    },
  },
  tokens: {
    title: 'expired, forged, unsigned and wrong-kind tokens answer 401; customers on admin routes 403',
    async run({ t, app, f, endpoints, send }) {
      const session = await login(app, f.user.email, f.user.password);
      for (const e of endpoints.filter((x) => x.auth !== 'public')) {
        const who = e.auth === 'admin' ? f.admin : session;
        const real = e.auth === 'refresh' ? who.refreshToken : who.token;
        const claims = claimsOf(real);
        const cases: [string | undefined, string][] = [
          [undefined, 'UNAUTHORIZED'],
          [await sign(app, expired(real)), 'TOKEN_EXPIRED'],
          [await sign(app, claims, { secret: 'a-secret-that-is-not-the-server-one' }), 'UNAUTHORIZED'],
          [unsigned(claims), 'UNAUTHORIZED'],
          [await sign(app, claims, { alg: 'HS512' }), 'UNAUTHORIZED'],
          [e.auth === 'refresh' ? who.token : who.refreshToken, 'UNAUTHORIZED'],
          ['garbage', 'UNAUTHORIZED'],
        ];
        if (e.auth === 'admin') cases.push([await sign(app, { ...claims, sub: f.user.userId }), 'UNAUTHORIZED']);
        for (const [token, code] of cases) isError(t, await send(e, { token, body: e.body }), 401, code);
        if (e.auth === 'admin') isError(t, await send(e, { token: f.user.token, body: e.body }), 403, 'FORBIDDEN');
      }
    },
  },
} satisfies Record<string, Check>;
