import test from 'ava';
import { request, sharedApp, TARGETS, type TestApp } from './helpers/app.js';
import { isError } from './helpers/assert.js';
import { newUser } from './helpers/users.js';

/**
 * Every internal route of every module, on every process that serves one (the one process, or
 * each of the four slices on its own port): without the service credential it is 401, and a
 * user's access token is no credential, whether sent as a bearer or as the credential itself.
 */
/** `/internal/<module>/<method>` of every port of every module the app has. */
const internalPaths = (app: TestApp) =>
  app.kernel.loaded.flatMap((m) => Object.keys(m.port?.methods ?? {}).map((method) => `/internal/${m.name}/${method}`));

for (const kind of TARGETS) {
  const app = sharedApp(kind);

  test(`[${kind}] every /internal route refuses a call without the service credential, and a customer token is none`, async (t) => {
    const paths = internalPaths(app);
    t.true(paths.length > 20, paths.join(' '));
    const customer = await newUser(app);
    const attempts: Record<string, string>[] = [
      {},
      { authorization: `Bearer ${customer.token}` },
      { 'x-service-token': customer.token },
      { 'x-service-token': '' },
    ];
    let calls = 0;
    for (const base of app.sliceUrls) {
      for (const path of paths) {
        for (const headers of attempts) {
          const res = await request(base, 'POST', path, { body: {}, headers });
          isError(t, res, 401, 'UNAUTHORIZED');
          calls++;
        }
      }
    }
    // Every process was asked: the one process, or each slice (two orchestrators on PostgreSQL).
    const processes = app.shape === 'single' ? 1 : app.kind === 'postgres' ? 5 : 4;
    t.is(new Set(app.sliceUrls).size, processes);
    t.is(calls, processes * paths.length * attempts.length);
  });
}
