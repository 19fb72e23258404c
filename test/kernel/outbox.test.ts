import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { createLogger } from '../../src/kernel/logger.js';
import { createOutbox } from '../../src/kernel/outbox.js';
import { DATABASES, sharedApp } from '../helpers/app.js';

/**
 * The kernel's outbox on a module database: a message exists only if its transaction commits,
 * is kept sealed, is delivered once even with two deliverers at work, is retried with backoff,
 * and is dropped once past its expiry.
 */

for (const kind of DATABASES) {
  const clock = manualClock();
  const app = sharedApp(kind, { env: { MODULES: 'event' }, clock });
  const db = () => app.kernel.databases.get('event')!;
  const box = (topic: string, handler: (m: { secret: string }) => Promise<void>) => {
    const outbox = createOutbox(db(), {
      clock,
      log: createLogger('silent'),
      secret: app.kernel.config.jwtSecret,
      intervalMs: 3_600_000,
    });
    outbox.handle(topic, handler);
    return outbox;
  };
  const rows = (topic: string) =>
    db().all<{ payload: string; attempts: number }>(
      `select payload, attempts from ${db().table('outbox')} where topic = ?`,
      [topic],
    );

  test.serial(
    `[${kind}] a message of a rolled-back transaction is never sent; a committed one is sealed and sent once by one of two deliverers`,
    async (t) => {
      const seen: string[] = [];
      const handler = async (m: { secret: string }) => {
        seen.push(m.secret);
      };
      const [a, b] = [box('sealed', handler), box('sealed', handler)];
      await t.throwsAsync(
        db().tx(async (trx) => {
          await a.put(trx, 'sealed', { secret: 'rolled-back-123456' });
          throw new Error('abort');
        }),
      );
      await db().tx((trx) => a.put(trx, 'sealed', { secret: 'code-654321' }));
      const [stored] = await rows('sealed');
      t.false(stored.payload.includes('654321'), 'the payload is not kept in clear');
      const delivered = await Promise.all([a.deliver(), b.deliver(), a.deliver()]);
      t.is(
        delivered.reduce((x, y) => x + y, 0),
        1,
      );
      t.deepEqual(seen, ['code-654321']);
      t.deepEqual(await rows('sealed'), [], 'a delivered message is deleted');
    },
  );

  test.serial(
    `[${kind}] a failed delivery is retried after its backoff, and a message past its expiry is dropped`,
    async (t) => {
      let fail = true;
      const seen: string[] = [];
      const outbox = box('flaky', async (m) => {
        if (fail) throw new Error('provider down');
        seen.push(m.secret);
      });
      await db().tx((trx) => outbox.put(trx, 'flaky', { secret: 'retry' }));
      await db().tx((trx) => outbox.put(trx, 'flaky', { secret: 'late' }, { expiresAt: clock.now() + 1500 }));
      t.is(await outbox.deliver(), 0);
      t.deepEqual(
        (await rows('flaky')).map((r) => r.attempts),
        [1, 1],
      );
      fail = false;
      t.is(await outbox.deliver(), 0, 'not before the backoff (1 s)');
      clock.advance(1000);
      t.is(await outbox.deliver(), 2);
      t.deepEqual(seen.sort(), ['late', 'retry']);

      fail = true;
      await db().tx((trx) => outbox.put(trx, 'flaky', { secret: 'expires' }, { expiresAt: clock.now() + 1500 }));
      await outbox.deliver();
      clock.advance(2000);
      fail = false;
      t.is(await outbox.deliver(), 0);
      t.deepEqual(await rows('flaky'), [], 'dropped, not delivered');
      t.false(seen.includes('expires'));
    },
  );
}
