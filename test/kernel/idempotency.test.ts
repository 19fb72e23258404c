import { randomUUID } from 'node:crypto';
import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { AppError } from '../../src/kernel/errors.js';
import { createIdempotency, KEY_RETENTION_MS } from '../../src/kernel/idempotency.js';
import { DATABASES, sharedApp, type TestApp } from '../helpers/app.js';

/**
 * The kernel's `once` on a module's own database: at most one application per key, the first
 * result for every repeat (concurrent ones included), 409 for a key reused by another operation,
 * nothing kept of a call that failed, and keys purged only after the retention.
 */

const keysOf = async (app: TestApp, key: string) => {
  const db = app.kernel.databases.get('event')!;
  const rows = await db.all<{ op: string }>(`select op from ${db.table('idempotency_keys')} where key = ?`, [key]);
  return rows.map((r) => r.op);
};

for (const kind of DATABASES) {
  const clock = manualClock();
  // Any module's database has the kernel's tables; the event module's is used here.
  const app = sharedApp(kind, { env: { MODULES: 'event' }, clock });
  const once = () => createIdempotency(app.kernel.databases.get('event')!, clock);

  test(`[${kind}] twenty concurrent calls with one key apply once and all answer the first result`, async (t) => {
    const { once: run } = once();
    const key = `k:${randomUUID()}`;
    let applied = 0;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        run(key, 'TEST', async () => {
          applied++;
          await new Promise((resolve) => setTimeout(resolve, 20));
          return { first: i };
        }),
      ),
    );
    t.is(applied, 1);
    t.true(answers.every((a) => a.first === answers[0].first));
    t.deepEqual(await keysOf(app, key), ['TEST']);
    t.deepEqual(await run(key, 'TEST', async () => ({ first: -1 })), answers[0], 'a later repeat too');
  });

  test(`[${kind}] the same key for another operation answers 409 IDEMPOTENCY_CONFLICT`, async (t) => {
    const { once: run } = once();
    const key = `k:${randomUUID()}`;
    await run(key, 'DEBIT', async () => 1);
    const err = await t.throwsAsync(run(key, 'REFUND', async () => 2));
    t.true(err instanceof AppError);
    t.is((err as AppError).code, 'IDEMPOTENCY_CONFLICT');
    t.is((err as AppError).status, 409);
  });

  test(`[${kind}] a call that throws keeps neither its key nor its writes, so it may be retried`, async (t) => {
    const { once: run } = once();
    const db = app.kernel.databases.get('event')!;
    const key = `k:${randomUUID()}`;
    const leases = db.table('job_leases');
    await t.throwsAsync(
      run(key, 'TEST', async (trx) => {
        await db.all(`insert into ${leases} (name, holder, expires_at) values (?, 'x', ?)`, [key, db.time(0)], trx);
        throw new AppError('NOT_FOUND', 'refused');
      }),
      { message: 'refused' },
    );
    t.deepEqual(await keysOf(app, key), []);
    t.deepEqual(await db.all(`select name from ${leases} where name = ?`, [key]), [], 'rolled back with it');
    t.is(await run(key, 'TEST', async () => 'second try'), 'second try');
  });

  test.serial(`[${kind}] keys are kept for 24 hours and purged by the job after that`, async (t) => {
    const { once: run } = once();
    const old = `k:${randomUUID()}`;
    await run(old, 'TEST', async () => 'old');
    clock.advance(KEY_RETENTION_MS - 60_000);
    const young = `k:${randomUUID()}`;
    await run(young, 'TEST', async () => 'young');
    await app.kernel.jobs.run('event', 'idempotency-purge');
    t.deepEqual(await keysOf(app, old), ['TEST'], 'a key younger than 24 hours stays');

    clock.advance(120_000);
    await app.kernel.jobs.run('event', 'idempotency-purge');
    t.deepEqual(await keysOf(app, old), [], 'purged after 24 hours');
    t.deepEqual(await keysOf(app, young), ['TEST']);
  });
}
