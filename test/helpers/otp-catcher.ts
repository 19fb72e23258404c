import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import type { Clock } from '../../src/kernel/clock.js';
import type { Database } from '../../src/kernel/persistence.js';
import { late, startApp, type Target, type TestApp } from './app.js';
import { standIn } from './stand-in.js';
import { adminLogin, type TestUser } from './users.js';

/** What the webhook OTP delivery posts. */
export interface Delivery {
  user_id: string;
  phone: string;
  code: string;
  purpose: string;
  reference_id: string;
  expires_at: string;
}

export interface OtpCatcher {
  url: string;
  /** The answer it gives; 300 or more refuses the deliveries. */
  status: number;
  /** Set by whoever starts the app: waits until the outbox has tried every message that is due. */
  settle(): Promise<void>;
  /** The deliveries it accepted for a reference, once the outbox has settled. */
  sent(referenceId: string): Promise<Delivery[]>;
  /** The last code accepted for a reference. */
  code(referenceId: string): Promise<string>;
}

/** The env that sends codes to the catcher. */
export const WEBHOOK = (url: string) => ({ OTP_DELIVERY: 'webhook', OTP_WEBHOOK_URL: `${url}/otp` });

/**
 * Codes are delivered from the outbox after the commit: this waits for the delivery pass under
 * way. In four processes that pass runs in the user slice: this waits until none of its messages
 * is left untried (each is delivered and gone, or has failed once). It does not deliver them from
 * this process: a second process writing a SQLite file makes the slice's own writes fail busy.
 */
export async function settleOutbox(app: TestApp) {
  if (app.shape === 'single') return app.kernel.jobs.run('user', 'outbox');
  const db = app.kernel.databases.get('user') as Database;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const [row] = await db.all<{ n: number | string }>(
      `select count(*) as n from ${db.table('outbox')} where last_error is null`,
    );
    if (Number(row.n) === 0) return;
    await sleep(20);
  }
}

/** The OTP webhook catcher, closed when `scope` (a test, or a file's hooks) ends. */
export async function otpWebhook(scope: Pick<ExecutionContext, 'teardown'>): Promise<OtpCatcher> {
  const deliveries: Delivery[] = [];
  const hook: OtpCatcher = {
    url: '',
    status: 200,
    settle: async () => undefined,
    async sent(referenceId) {
      await hook.settle();
      return deliveries.filter((d) => d.reference_id === referenceId);
    },
    code: async (referenceId) => (await hook.sent(referenceId)).at(-1)!.code,
  };
  hook.url = await standIn(scope, (_req, raw) => {
    if (hook.status < 300) deliveries.push(JSON.parse(raw) as Delivery);
    return { status: hook.status };
  });
  return hook;
}

/**
 * One app for a whole test file on one database, whose codes go to a catcher, with its admin
 * logged in: one before hook starts all three (ava runs a file's before hooks concurrently).
 */
export function sharedAppWithOtp(kind: Target, env: Record<string, string> = {}, clock?: Clock) {
  const closers: (() => unknown)[] = [];
  let app: TestApp | undefined;
  let admin: TestUser | undefined;
  let hook: OtpCatcher | undefined;
  test.before(async () => {
    hook = await otpWebhook({ teardown: (fn) => closers.push(fn) });
    app = await startApp(kind, { ...WEBHOOK(hook.url), ...env }, { clock });
    const started = app;
    hook.settle = () => settleOutbox(started);
    admin = await adminLogin(app);
  });
  test.after.always(async () => {
    await app?.close();
    for (const close of closers) await close();
  });
  return {
    app: late(() => app, 'the shared app'),
    admin: late(() => admin, 'the admin'),
    otp: late(() => hook, 'the OTP catcher'),
  };
}
