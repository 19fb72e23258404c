import test from 'ava';
import pg from 'pg';
import { PG_URL, startApp } from './helpers/app.js';
import { newUser } from './helpers/users.js';

/** It needs a PostgreSQL server to cut off: without one it is skipped, and says why. */
const pgTest = PG_URL ? test.serial : test.skip;
const unless = PG_URL ? '' : ' — skipped: no DATABASE_URL or TEST_DATABASE_URL';

async function admin(sql: string) {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

pgTest(
  `[postgres] a lost database makes /health 503 and requests 503 SERVICE_UNAVAILABLE, then recovers${unless}`,
  async (t) => {
    const app = await startApp('postgres');
    t.teardown(async () => {
      await admin(`alter database ${dbName()} allow_connections true`).catch(() => undefined);
      await app.close();
    });
    const dbName = () => new URL(app.env.DATABASE_URL).pathname.slice(1);
    const user = await newUser(app);

    await admin(`alter database ${dbName()} allow_connections false`);
    await admin(`select pg_terminate_backend(pid) from pg_stat_activity where datname = '${dbName()}'`);

    const health = await app.request('GET', '/health');
    t.is(health.status, 503);
    t.is(health.body.status, 'unhealthy');
    t.is(health.body.checks.database, 'disconnected');

    const login = await app.request('POST', '/api/auth/login', {
      body: { email: user.email, password: user.password },
    });
    t.is(login.status, 503);
    t.is(login.body.error_code, 'SERVICE_UNAVAILABLE');
    const me = await app.request('GET', '/api/users/me', { token: user.token });
    t.is(me.status, 503);

    await admin(`alter database ${dbName()} allow_connections true`);
    const back = await app.request('GET', '/health');
    t.is(back.status, 200);
    t.is(back.body.checks.database, 'connected');
    t.is((await app.request('GET', '/api/users/me', { token: user.token })).status, 200);
  },
);
