import test from 'ava';
import { DATABASES, startApp } from '../helpers/app.js';
import { newUser } from '../helpers/users.js';

for (const kind of DATABASES) {
  test(`[${kind}] a new user registers, logs in and reads their profile`, async (t) => {
    const app = await startApp(kind);
    t.teardown(() => app.close());
    const u = await newUser(app);
    const me = await app.request('GET', '/api/users/me', { token: u.token });
    t.is(me.status, 200);
    t.is(me.body.data.email, u.email);
    t.is(me.body.data.credit_balance, 0);
  });
}
