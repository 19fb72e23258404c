import { randomUUID } from 'node:crypto';
import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import type { AppError } from '../../src/kernel/errors.js';
import { createLogger } from '../../src/kernel/logger.js';
import { createSagaLog } from '../../src/modules/orchestrator/saga.js';
import { DATABASES, sharedApp } from '../helpers/app.js';
import { until } from '../helpers/assert.js';

/**
 * The saga log's claim on a saga (ADR 8): recovery leaves a saga whose runner's lease is live,
 * takes over one whose lease ran out, and the runner that lost it stops at its next write.
 */
for (const kind of DATABASES) {
  const clock = manualClock();
  // The module's own recovery job must not tick during the test: it would claim the saga too.
  const app = sharedApp(kind, { env: { SWEEP_INTERVAL_MS: '3600000' }, clock });

  test.serial(
    `[${kind}] a runner whose lease ran out loses its saga to recovery and stops with 503 at its next write`,
    async (t) => {
      const db = app.kernel.databases.get('orchestrator')!;
      const leaseMs = 1000;
      const sagas = createSagaLog(
        db,
        clock,
        { enabled: false, at: async () => undefined },
        createLogger('silent'),
        leaseMs,
      );
      let open!: () => void;
      const gate = new Promise<void>((resolve) => {
        open = resolve;
      });
      const ran: string[] = [];
      sagas.register({
        kind: 'cancel',
        steps: {
          async end() {
            ran.push('end');
            if (ran.length === 1) await gate;
            return { next: 'release' };
          },
          async release() {
            ran.push('release');
            return { end: 'DONE', outcome: { ok: true, data: 'done' } };
          },
        },
        resume: (step) => step,
      });
      const orderId = randomUUID();
      const first = sagas.start({ kind: 'cancel', orderId, userId: randomUUID(), step: 'end', data: {} });
      t.true(await until(async () => ran.length === 1), 'the first runner is in its first step');

      t.is(await sagas.recover(), 0, 'a saga whose lease is live is left to its runner');
      clock.advance(leaseMs + 1);
      t.is(await sagas.recover(), 1, 'once the lease ran out, recovery takes the saga over and finishes it');
      open();
      const err = await t.throwsAsync<AppError>(first);
      t.is(err?.code, 'SERVICE_UNAVAILABLE');
      t.deepEqual(ran, ['end', 'end', 'release'], 'the runner that lost the saga ran no further step');
      const [row] = await db.all<{ status: string; step: string }>(
        `select status, step from ${db.table('sagas')} where order_id = ?`,
        [orderId],
      );
      t.deepEqual(row, { status: 'DONE', step: 'release' }, 'the saga ended as recovery left it');
    },
  );
}
