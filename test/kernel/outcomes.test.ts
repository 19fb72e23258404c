import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import Joi from 'joi';
import { AppError } from '../../src/kernel/errors.js';
import { createFaults } from '../../src/kernel/faults.js';
import { createLogger } from '../../src/kernel/logger.js';
import { callOutcome, createHttpPort, createLocalPort, PortCallError, servePort } from '../../src/kernel/ports.js';
import { type UserPort, userPortDefinition } from '../../src/modules/user/index.js';
import { DATABASES, request, sharedApp } from '../helpers/app.js';
import { rejects } from '../helpers/assert.js';
import { freePort, type Server, spawnServer, waitForHealth } from '../helpers/process.js';

/**
 * The three outcomes a caller (a saga) acts on: refused, not delivered, unknown. The process
 * tests run on SQLite only: they are about the network between slices, not about a database.
 */

const SECRETS = {
  JWT_SECRET: 'outcomes-test-jwt-secret-0123456789',
  SERVICE_TOKEN: 'outcomes-test-service-token-0123456789',
};
const ADMIN = { ADMIN_EMAIL: 'outcomes@test.local', ADMIN_PASSWORD: 'outcomes-admin-pw' };
const DEADLINE_MS = 1000;

interface Slice {
  server: Server;
  url: string;
  user: UserPort;
}

/** A user slice as its own process, called through the HTTP adapter with a deadline of DEADLINE_MS. */
async function startSlice(env: Record<string, string> = {}): Promise<Slice> {
  const port = await freePort();
  const server = spawnServer({ ...SECRETS, MODULES: 'user', USER_PORT: String(port), ...env });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHealth(server, url);
  } catch (err) {
    server.cleanup();
    throw err;
  }
  return { server, url, user: createHttpPort<UserPort>(userPortDefinition, url, SECRETS.SERVICE_TOKEN, DEADLINE_MS) };
}

/** A slice for one test, resumed if stopped and killed at its end. */
async function sliceFor(t: ExecutionContext, env: Record<string, string> = {}): Promise<Slice> {
  const own = await startSlice(env);
  t.teardown(() => stop(own.server));
  return own;
}

/** A stopped process must never be left behind: resume it, then kill it. */
function stop(server: Server) {
  resume(server);
  server.cleanup();
}

function resume(server: Server) {
  if (server.child.pid && server.child.exitCode === null && server.child.signalCode === null) {
    process.kill(server.child.pid, 'SIGCONT');
  }
}

/** The call fails with a PortCallError of this outcome, seen by a client as 503 SERVICE_UNAVAILABLE. */
async function undelivered(t: ExecutionContext, call: Promise<unknown>, outcome: 'not_delivered' | 'unknown') {
  const err = await t.throwsAsync(call);
  t.true(err instanceof PortCallError, `a PortCallError, not ${err?.constructor.name}: ${err?.message}`);
  t.is(callOutcome(err), outcome, (err as PortCallError).why);
  t.is((err as AppError).status, 503);
  t.is((err as AppError).code, 'SERVICE_UNAVAILABLE');
  return err as PortCallError;
}

/** How long `fn` took, in ms. */
async function timed(fn: () => Promise<unknown>) {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

let slice: Slice | undefined;
test.before(async () => {
  slice = await startSlice(ADMIN);
});
test.after.always(() => slice && stop(slice.server));

test.serial('a slice that refuses a call answers with the typed AppError: the outcome is refused', async (t) => {
  const err = await t.throwsAsync(slice!.user.getUser({ userId: randomUUID() }));
  t.true(err instanceof AppError && !(err instanceof PortCallError), err?.message);
  t.is((err as AppError).code, 'USER_NOT_FOUND');
  t.is(callOutcome(err), 'refused');
});

test.serial('a slice that hangs (SIGSTOP) leaves the outcome unknown once the deadline has passed', async (t) => {
  const { server, user } = slice!;
  t.teardown(() => resume(server));
  process.kill(server.child.pid!, 'SIGSTOP');
  const elapsed = await timed(async () => {
    const err = await undelivered(t, user.getUser({ userId: randomUUID() }), 'unknown');
    t.regex(err.why, /deadline/);
  });
  t.true(elapsed >= DEADLINE_MS - 50, `gave up after ${elapsed} ms, before the deadline`);
  t.true(elapsed < DEADLINE_MS + 2000, `gave up after ${elapsed} ms: the deadline is not the one given`);
});

test.serial('a debit whose answer was lost is applied once when retried with the same key', async (t) => {
  const { server, url, user } = slice!;
  t.teardown(() => resume(server));
  const email = `debit-${randomUUID()}@test.local`;
  const password = 'correct-horse-1';
  const customer = await request(url, 'POST', '/api/auth/register', {
    body: { email, password, phone: '+6591234567' },
  });
  t.is(customer.status, 201, JSON.stringify(customer.body));
  const userId: string = customer.body.data.user_id;
  const admin = await request(url, 'POST', '/api/auth/login', {
    body: { email: ADMIN.ADMIN_EMAIL, password: ADMIN.ADMIN_PASSWORD },
  });
  const grant = await request(url, 'POST', '/api/admin/credits', {
    token: admin.body.data?.access_token,
    body: { user_id: userId, amount: 100, reason: 'outcomes test' },
  });
  t.is(grant.status, 201, JSON.stringify(grant.body));

  // The slice's kernel accepts the connection and buffers the request; the process answers nothing.
  const debit = { userId, amount: 2500, key: `outcomes:${randomUUID()}` };
  process.kill(server.child.pid!, 'SIGSTOP');
  await undelivered(t, user.debit(debit), 'unknown');
  resume(server);
  // Resumed, the slice reads the request it was sent and applies it, though nobody waits for the answer.
  let balance = 10_000;
  for (let i = 0; i < 100 && balance === 10_000; i++) {
    await sleep(100);
    balance = (await user.getUser({ userId })).creditBalance;
  }
  t.is(balance, 7500, 'the first call was applied after the slice resumed');

  const retried = await user.debit(debit);
  t.is(retried.balance, 7500, 'the retry answers with the first result and takes nothing more');
  t.is((await user.getUser({ userId })).creditBalance, 7500);
  const login = await request(url, 'POST', '/api/auth/login', { body: { email, password } });
  const ledger = await request(url, 'GET', '/api/credits/transactions', { token: login.body.data.access_token });
  t.deepEqual(
    ledger.body.data.map((row: { transaction_id: string; type: string }) => [row.type, row.transaction_id]),
    [
      ['PURCHASE', retried.transactionId],
      ['GRANT', grant.body.data.transaction_id],
    ],
    'one debit row, the one the retry answered with',
  );
});

test('a slice that answers 500 leaves the outcome unknown', async (t) => {
  const faulty = await sliceFor(t, { FAULT_INJECTION: 'user.getUser=error' });
  const err = await undelivered(t, faulty.user.getUser({ userId: randomUUID() }), 'unknown');
  t.is(err.why, 'HTTP 500');
});

test('a stopped slice (SIGKILL) means the call was not delivered', async (t) => {
  const doomed = await sliceFor(t);
  // A call first, so that the adapter holds a kept-alive connection to the slice when it dies.
  await rejects(t, doomed.user.getUser({ userId: randomUUID() }), 'USER_NOT_FOUND');
  doomed.server.child.kill('SIGKILL');
  t.is(await doomed.server.exited, 'SIGKILL');
  const err = await undelivered(t, doomed.user.getUser({ userId: randomUUID() }), 'not_delivered');
  t.is(err.why, 'ECONNREFUSED');
});

test('a slice that crashes at a fault point (exit) dies at once, and the call it was serving is unknown', async (t) => {
  const crashing = await sliceFor(t, { FAULT_INJECTION: 'user.getUser=exit' });
  const err = await undelivered(t, crashing.user.getUser({ userId: randomUUID() }), 'unknown');
  t.not(err.why, 'no answer before the deadline', 'the connection broke: the process was gone, not slow');
  t.is(await crashing.server.exited, 'SIGKILL', 'a crash, not a shutdown: killed, exit code none');
  await undelivered(t, crashing.user.getUser({ userId: randomUUID() }), 'not_delivered');
});

// The in-process adapter, with the same deadline (INTERNAL_TIMEOUT_MS) and the same outcomes.
for (const kind of DATABASES) {
  const app = sharedApp(kind, {
    env: { FAULT_INJECTION: 'user.getUser=error,user.getRiskFlag=hang', INTERNAL_TIMEOUT_MS: '300' },
  });
  const user = () => app.kernel.ports.get('user');

  test(`[${kind}] in-process, a refused call is the typed AppError`, async (t) => {
    const userId = randomUUID();
    const call = user().debit({ userId, amount: 100, key: `outcomes:${randomUUID()}` });
    await rejects(t, call, 'USER_NOT_FOUND');
    t.is(callOutcome(await call.catch((err) => err)), 'refused');
  });

  test(`[${kind}] in-process, a method that throws leaves the outcome unknown`, async (t) => {
    await undelivered(t, user().getUser({ userId: randomUUID() }), 'unknown');
  });

  test(`[${kind}] in-process, a method that hangs leaves the outcome unknown after INTERNAL_TIMEOUT_MS`, async (t) => {
    const elapsed = await timed(async () => {
      const err = await undelivered(t, user().getRiskFlag({ userId: randomUUID() }), 'unknown');
      t.regex(err.why, /deadline/);
    });
    t.true(elapsed >= 250, `gave up after ${elapsed} ms, before the deadline`);
    t.true(elapsed < 2300, `gave up after ${elapsed} ms: not the 300 ms of INTERNAL_TIMEOUT_MS`);
  });
}

test('the in-process adapter copies the arguments as the wire would: a callee cannot change its caller’s objects', async (t) => {
  const def = { name: 'keeper', methods: { keep: Joi.object({ list: Joi.array().items(Joi.string()).required() }) } };
  const impl = {
    keep: async (a: { list: string[] }) => {
      a.list.push('callee');
      return { list: a.list };
    },
  };
  const port = createLocalPort<typeof impl>(def, servePort(def, impl, createFaults('', createLogger('silent'))), 1000);
  const args = { list: ['caller'] };
  t.deepEqual(await port.keep(args), { list: ['caller', 'callee'] });
  t.deepEqual(args, { list: ['caller'] });
});
