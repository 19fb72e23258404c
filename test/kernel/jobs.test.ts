import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { createScheduler } from '../../src/kernel/jobs.js';
import { createLogger, requestScope } from '../../src/kernel/logger.js';
import { DATABASES, freshDatabase, sharedApp } from '../helpers/app.js';
import { freePort, type Server, spawnServer, waitForHealth } from '../helpers/process.js';

/**
 * Background jobs: each tick in its own scope (correlation id, entity manager), and leases so
 * that with several processes one runs a job at a time, and a killed holder's lease runs out.
 */

function sink() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, log: createLogger('debug', stream) };
}

for (const kind of DATABASES) {
  const clock = manualClock();
  const app = sharedApp(kind, { env: { MODULES: 'user' }, clock });
  const db = () => app.kernel.databases.get('user')!;

  test(`[${kind}] each tick runs in its own scope: its own correlation id on its log lines and its own entity manager`, async (t) => {
    const { lines, log } = sink();
    const jobs = createScheduler({ log, clock, leaseMs: 10_000 });
    const seen: { id?: string; em: object }[] = [];
    jobs.add('user', db(), {
      name: 'scoped',
      intervalMs: 3_600_000,
      run: async (scope) => {
        scope.log.info('tick');
        const em = db().em;
        seen.push({ id: requestScope.getStore()?.correlationId, em });
        t.is(db().em, em, 'one entity manager for the whole tick');
      },
    });
    await jobs.run('user', 'scoped');
    await jobs.run('user', 'scoped');
    await jobs.stop();
    t.is(seen.length, 2);
    t.not(seen[0].id, seen[1].id);
    t.not(seen[0].em, seen[1].em);
    const ticks = lines.filter((l) => l.msg === 'tick');
    t.deepEqual(
      ticks.map((l) => [l.correlation_id, l.job, l.module]),
      seen.map((s) => [s.id, 'scoped', 'user']),
    );
  });

  test(`[${kind}] a job marked atStart ticks once as the scheduler starts, not only after its first interval`, async (t) => {
    const jobs = createScheduler({ log: createLogger('silent'), clock, leaseMs: 10_000 });
    const ran: string[] = [];
    const hour = 3_600_000;
    jobs.add('user', db(), {
      name: 'recovery',
      intervalMs: hour,
      atStart: true,
      run: async () => ran.push('recovery'),
    });
    jobs.add('user', db(), { name: 'sweeper', intervalMs: hour, run: async () => ran.push('sweeper') });
    jobs.start();
    for (let i = 0; i < 100 && !ran.length; i++) await sleep(10);
    await jobs.stop();
    t.deepEqual(ran, ['recovery'], 'the atStart job ran at once, the other waits for its hour');
  });

  test.serial(
    `[${kind}] a leased job runs in one holder at a time; a stopped holder hands it on, a silent one's lease runs out`,
    async (t) => {
      const runs = { a: 0, b: 0 };
      const make = (who: 'a' | 'b') => {
        const jobs = createScheduler({ log: createLogger('silent'), clock, leaseMs: 5_000 });
        jobs.add('user', db(), {
          name: `leased-${kind}`,
          intervalMs: 3_600_000,
          leased: true,
          run: async () => {
            runs[who]++;
          },
        });
        return jobs;
      };
      const [a, b] = [make('a'), make('b')];
      for (let i = 0; i < 5; i++) await Promise.all([a.run('user', `leased-${kind}`), b.run('user', `leased-${kind}`)]);
      t.is(runs.a + runs.b, 5, 'every round ran exactly once');
      t.true(runs.a === 5 || runs.b === 5, `one holder ran them all: ${JSON.stringify(runs)}`);
      const [holder, other] = runs.a === 5 ? [a, b] : [b, a];
      const before = { ...runs };

      clock.advance(4_000);
      await other.run('user', `leased-${kind}`);
      t.deepEqual(runs, before, 'the lease still holds');
      clock.advance(1_001);
      await other.run('user', `leased-${kind}`);
      t.is(runs.a + runs.b, 6, 'the silent holder’s lease ran out and the other took it');
      await holder.run('user', `leased-${kind}`);
      t.is(runs.a + runs.b, 6, 'the old holder does not take it back');

      await other.stop();
      await holder.run('user', `leased-${kind}`);
      t.is(runs.a + runs.b, 7, 'a clean stop hands the lease on at once');
      await holder.stop();
    },
  );
}

/** Lines of a process's output that say a tick of `job` ran. */
const ran = (server: Server, job: string) =>
  server
    .output()
    .split('\n')
    .filter((l) => l.includes('"job ran"') && l.includes(`"job":"${job}"`))
    .map((l) => JSON.parse(l) as { correlation_id?: string });

for (const kind of DATABASES) {
  test(`[${kind}] two processes on one database: one runs the leased purge, and when it is killed the other takes over`, async (t) => {
    const db = await freshDatabase(kind);
    const servers: Server[] = [];
    t.teardown(async () => {
      for (const s of servers) s.cleanup();
      await db.drop();
    });
    // The purge runs every 60 sweep intervals: 1.2 s here, renewing a 3 s lease.
    const env = { ...db.env, MODULES: 'user', LOG_LEVEL: 'debug', SWEEP_INTERVAL_MS: '20', JOB_LEASE_MS: '3000' };
    const start = async () => {
      const port = await freePort();
      const server = spawnServer({ ...env, USER_PORT: String(port) });
      servers.push(server);
      await waitForHealth(server, `http://127.0.0.1:${port}`);
      return server;
    };
    const first = await start();
    const second = await start();
    await sleep(4_000);
    const [holder, other] = ran(first, 'idempotency-purge').length ? [first, second] : [second, first];
    t.true(ran(holder, 'idempotency-purge').length >= 2, 'the holder runs the purge');
    t.is(ran(other, 'idempotency-purge').length, 0, 'the other never does while the lease is held');
    t.true(ran(holder, 'idempotency-purge').every((l) => l.correlation_id?.startsWith('job-')));

    holder.child.kill('SIGKILL');
    await holder.exited;
    const deadline = Date.now() + 10_000;
    while (!ran(other, 'idempotency-purge').length && Date.now() < deadline) await sleep(200);
    t.true(ran(other, 'idempotency-purge').length > 0, 'the killed holder’s lease ran out and the other took over');
  });
}
