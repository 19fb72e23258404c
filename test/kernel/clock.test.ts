import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { DATABASES, sharedApp } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import { newUser } from '../helpers/users.js';

/** Tokens and sessions read the one clock: moving it expires them, with no wait. */

for (const kind of DATABASES) {
  const clock = manualClock();
  const app = sharedApp(kind, { env: { MODULES: 'user' }, clock });

  test.serial(
    `[${kind}] an access token expires after ACCESS_TOKEN_TTL_SECONDS and a refresh token after its own TTL, on the app's clock`,
    async (t) => {
      const user = await newUser(app);
      t.is((await app.request('GET', '/api/users/me', { token: user.token })).status, 200);

      clock.advance(901_000);
      isError(t, await app.request('GET', '/api/users/me', { token: user.token }), 401, 'TOKEN_EXPIRED');
      const refreshed = await app.request('POST', '/api/auth/refresh', { token: user.refreshToken });
      t.is(refreshed.status, 200, 'the refresh token lives 7 days');
      t.is((await app.request('GET', '/api/users/me', { token: refreshed.body.data.access_token })).status, 200);

      clock.advance(7 * 24 * 3600 * 1000);
      const late = await app.request('POST', '/api/auth/refresh', { token: refreshed.body.data.refresh_token });
      isError(t, late, 401, 'TOKEN_EXPIRED');
    },
  );
}
