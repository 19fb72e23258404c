import test from 'ava';
import { modules } from '../src/modules/index.js';
import { request, sharedApp, TARGETS } from './helpers/app.js';
import { isError } from './helpers/assert.js';
import { newUser } from './helpers/users.js';

/**
 * Every internal route of every module, on every process that serves one (the one process, or
 * each of the four slices on its own port): without the service credential it is 401, and a
 * user's access token is no credential, whether sent as a bearer or as the credential itself.
 */
const METHODS = modules.flatMap((m) =>
  Object.keys(m.port?.methods ?? {}).map((method) => `/internal/${m.name}/${method}`),
);

for (const kind of TARGETS) {
  const app = sharedApp(kind);

  test(`[${kind}] every /internal route refuses a call without the service credential, and a customer token is none`, async (t) => {
    t.true(METHODS.length > 20, METHODS.join(' '));
    const customer = await newUser(app);
    const attempts: Record<string, string>[] = [
      {},
      { authorization: `Bearer ${customer.token}` },
      { 'x-service-token': customer.token },
      { 'x-service-token': '' },
    ];
    let calls = 0;
    for (const base of app.sliceUrls) {
      for (const path of METHODS) {
        for (const headers of attempts) {
          const res = await request(base, 'POST', path, { body: {}, headers });
          isError(t, res, 401, 'UNAUTHORIZED');
          calls++;
        }
      }
    }
    t.is(calls, app.sliceUrls.length * METHODS.length * attempts.length);
  });
}
