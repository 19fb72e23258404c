import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import test, { type ExecutionContext } from 'ava';
import { type Clock, manualClock } from '../../src/kernel/clock.js';
import type { UserPort } from '../../src/modules/user/index.js';
import { DATABASES, type DbKind, startApp, type TestApp } from '../helpers/app.js';
import { type Delivery, otpWebhook, settleOutbox, WEBHOOK } from '../helpers/otp-catcher.js';
import { type Reply, standIn } from '../helpers/stand-in.js';
import { adminLogin, grant, newUser, USER_ADAPTERS } from '../helpers/users.js';

type Handler = (path: string, body: Record<string, string>, req: IncomingMessage) => Reply;

/** A stand-in provider that speaks JSON, its handler given the path and the parsed body. */
const serve = (t: ExecutionContext, handler: Handler) =>
  standIn(t, (req, raw) => handler(req.url ?? '', raw ? JSON.parse(raw) : {}, req));

/** A webhook that takes a delivery and holds its answer until `release()`: a provider that hangs. */
async function hangingWebhook(t: ExecutionContext) {
  const delivered: Delivery[] = [];
  const held: (() => void)[] = [];
  let arrive: () => void = () => undefined;
  const hook = {
    url: '',
    delivered,
    arrived: new Promise<void>((resolve) => {
      arrive = resolve;
    }),
    open: () => held.length,
    release() {
      for (const answer of held.splice(0)) answer();
    },
  };
  hook.url = await standIn(
    t,
    (_req, raw) =>
      new Promise<Reply>((resolve) => {
        held.push(() => {
          delivered.push(JSON.parse(raw));
          resolve({ status: 200 });
        });
        arrive();
      }),
  );
  return hook;
}

/** The one code the fake SMU-Lab API approves. */
const SMU_CODE = '482913';

/** A fake SMU-Lab Notification API under /notification: SendOTP hands out sids, VerifyOTP approves SMU_CODE. */
async function fakeSmu(t: ExecutionContext) {
  const smu = { url: '', status: 200, calls: [] as { path: string; body: Record<string, string>; apiKey?: string }[] };
  const sids = new Set<string>();
  const base = await serve(t, (path, body, req) => {
    smu.calls.push({ path, body, apiKey: req.headers['x-api-key'] as string | undefined });
    if (smu.status >= 300) return { status: smu.status };
    if (path === '/notification/SendOTP') {
      const sid = `VE${randomUUID().replace(/-/g, '')}`;
      sids.add(sid);
      return { status: 200, body: { VerificationSid: sid } };
    }
    if (path === '/notification/VerifyOTP') {
      const approved = sids.has(body.VerificationSid) && body.Code === SMU_CODE;
      return { status: 200, body: { Status: approved ? 'approved' : 'pending' } };
    }
    return { status: 404 };
  });
  smu.url = `${base}/notification`;
  return smu;
}

/** Only the user slice: OTPs live there, and it keeps each test's database connections few. */
async function boot(
  t: ExecutionContext,
  kind: DbKind,
  env: Record<string, string>,
  hook?: { settle: () => Promise<void> },
  clock?: Clock,
) {
  const app = await startApp(kind, { MODULES: 'user', ...env }, { clock });
  t.teardown(() => app.close());
  if (hook) hook.settle = () => settleOutbox(app);
  return app;
}

/** The same port in-process and through its HTTP adapter (/internal/user/<method>), by name. */
const adapters = (app: TestApp): [string, UserPort][] =>
  Object.entries(USER_ADAPTERS).map(([via, make]) => [via, make(app)]);

/** 'OK' or the error code a call answered with. */
const outcome = (p: Promise<unknown>) =>
  p.then(
    () => 'OK',
    (err: { code?: string }) => err.code ?? String(err),
  );

const wrong = (code: string) => (code === '000000' ? '111111' : '000000');

interface ChallengeRow {
  code_hash: string | null;
  provider_sid: string | null;
  failures: number;
  verified_at: unknown;
}

async function challenge(app: TestApp, userId: string, referenceId: string): Promise<ChallengeRow | undefined> {
  const db = app.kernel.databases.get('user')!;
  const [row] = await db.all<ChallengeRow>(
    `select code_hash, provider_sid, failures, verified_at from ${db.table('otp_challenges')} where user_id = ? and purpose = ? and reference_id = ?`,
    [userId, 'purchase', referenceId],
  );
  return row;
}

/** A user and the arguments of one challenge of theirs. */
async function scenario(app: TestApp, phone = '+6591234567') {
  const user = await newUser(app, { phone });
  const referenceId = randomUUID();
  const args = { userId: user.userId, purpose: 'purchase' as const, referenceId };
  return { user, referenceId, args, key: (name: string) => `${referenceId}:${name}` };
}

for (const kind of DATABASES) {
  test(`[${kind}] the local code reaches the webhook, is stored only as a hash, and verifies until it expires`, async (t) => {
    const hook = await otpWebhook(t);
    const app = await boot(t, kind, WEBHOOK(hook.url), hook);
    for (const [via, port] of adapters(app)) {
      const { user, referenceId, args, key } = await scenario(app, '+6591110001');
      const sent = await port.sendOtp({ ...args, key: key('send') });
      t.like(sent, args, via);
      t.true(Date.parse(sent.expiresAt) > Date.now() + 290_000, via);

      const [delivery] = await hook.sent(referenceId);
      t.deepEqual(
        delivery,
        {
          user_id: user.userId,
          phone: '+6591110001',
          code: delivery.code,
          purpose: 'purchase',
          reference_id: referenceId,
          expires_at: sent.expiresAt,
        },
        via,
      );
      t.regex(delivery.code, /^\d{6}$/, via);

      const row = (await challenge(app, user.userId, referenceId))!;
      t.regex(row.code_hash!, /^[0-9a-f]{64}$/, via);
      t.false(row.code_hash!.includes(delivery.code), `${via}: the code is not stored in clear`);
      t.is(row.verified_at, null, via);

      t.deepEqual(await port.verifyOtp({ ...args, code: delivery.code, key: key('verify') }), { verified: true }, via);
      t.not((await challenge(app, user.userId, referenceId))!.verified_at, null, via);
      t.deepEqual(await port.verifyOtp({ ...args, code: delivery.code, key: key('again') }), { verified: true }, via);

      t.is(await outcome(port.sendOtp({ ...args, userId: randomUUID(), key: key('nobody') })), 'USER_NOT_FOUND', via);
    }
  });

  test(`[${kind}] two wrong codes answer OTP_INVALID, the third OTP_MAX_RETRIES, and then even the right code is refused`, async (t) => {
    const hook = await otpWebhook(t);
    const app = await boot(t, kind, WEBHOOK(hook.url), hook);
    for (const [via, port] of adapters(app)) {
      const { user, referenceId, args, key } = await scenario(app);
      await port.sendOtp({ ...args, key: key('send') });
      const code = await hook.code(referenceId);

      t.is(await outcome(port.verifyOtp({ ...args, code: wrong(code), key: key('w1') })), 'OTP_INVALID', via);
      t.is((await challenge(app, user.userId, referenceId))!.failures, 1, via);
      t.is(await outcome(port.verifyOtp({ ...args, code: wrong(code), key: key('w2') })), 'OTP_INVALID', via);
      t.is(await outcome(port.verifyOtp({ ...args, code: wrong(code), key: key('w3') })), 'OTP_MAX_RETRIES', via);
      t.is(await outcome(port.verifyOtp({ ...args, code, key: key('right') })), 'OTP_MAX_RETRIES', via);
      t.is(await outcome(port.sendOtp({ ...args, key: key('resend') })), 'OTP_MAX_RETRIES', via);
      t.is((await hook.sent(referenceId)).length, 1, `${via}: nothing is sent once the budget is spent`);
      t.is((await challenge(app, user.userId, referenceId))!.failures, 3, via);
    }
    const { referenceId, args, key } = await scenario(app);
    await USER_ADAPTERS.local(app).sendOtp({ ...args, key: key('send') });
    const internal = async (name: string) =>
      app.request('POST', '/internal/user/verifyOtp', {
        headers: { 'x-service-token': app.kernel.config.serviceToken },
        body: { ...args, code: wrong(await hook.code(referenceId)), key: key(name) },
      });
    t.like(await internal('a'), { status: 401, body: { success: false, error_code: 'OTP_INVALID' } });
    await internal('b');
    t.like(await internal('c'), { status: 429, body: { success: false, error_code: 'OTP_MAX_RETRIES' } });
  });

  test(`[${kind}] the budget of three wrong codes spans re-sent codes, and a guess before any code counts too`, async (t) => {
    const hook = await otpWebhook(t);
    const app = await boot(t, kind, WEBHOOK(hook.url), hook);
    for (const [via, port] of adapters(app)) {
      const { user, referenceId, args, key } = await scenario(app);
      t.is(await outcome(port.verifyOtp({ ...args, code: '123456', key: key('early') })), 'OTP_INVALID', via);

      await port.sendOtp({ ...args, key: key('send-1') });
      const first = await hook.code(referenceId);
      t.is((await challenge(app, user.userId, referenceId))!.failures, 1, `${via}: sending keeps the count`);
      t.is(await outcome(port.verifyOtp({ ...args, code: wrong(first), key: key('w1') })), 'OTP_INVALID', via);

      await port.sendOtp({ ...args, key: key('send-2') });
      const second = await hook.code(referenceId);
      t.is((await challenge(app, user.userId, referenceId))!.failures, 2, `${via}: re-sending keeps the count`);
      const replaced = first === second ? wrong(second) : first;
      t.is(await outcome(port.verifyOtp({ ...args, code: replaced, key: key('old') })), 'OTP_MAX_RETRIES', via);
      t.is(await outcome(port.verifyOtp({ ...args, code: second, key: key('right') })), 'OTP_MAX_RETRIES', via);
      t.is(await outcome(port.sendOtp({ ...args, key: key('send-3') })), 'OTP_MAX_RETRIES', via);
      t.is((await hook.sent(referenceId)).length, 2, via);
    }
  });

  test(`[${kind}] a repeated key sends one code and counts a wrong code once`, async (t) => {
    const hook = await otpWebhook(t);
    const app = await boot(t, kind, WEBHOOK(hook.url), hook);
    const [[, local], [, http]] = adapters(app);
    const { user, referenceId, args, key } = await scenario(app);

    const send = { ...args, key: key('send') };
    const sends = await Promise.all([local.sendOtp(send), http.sendOtp(send), local.sendOtp(send)]);
    sends.push(await http.sendOtp(send));
    for (const s of sends) t.deepEqual(s, sends[0]);
    t.is((await hook.sent(referenceId)).length, 1);
    const code = await hook.code(referenceId);

    const guess = { ...args, code: wrong(code), key: key('guess') };
    const guesses = await Promise.all([local, http, local, http].map((p) => outcome(p.verifyOtp(guess))));
    guesses.push(await outcome(local.verifyOtp(guess)));
    t.deepEqual(guesses, Array(5).fill('OTP_INVALID'));
    t.is((await challenge(app, user.userId, referenceId))!.failures, 1);

    t.is(await outcome(http.verifyOtp({ ...guess, code })), 'OTP_INVALID', 'a repeated key answers as it first did');
    const right = { ...args, code, key: key('right') };
    t.deepEqual(await http.verifyOtp(right), { verified: true });
    t.deepEqual(await local.verifyOtp({ ...right, code: wrong(code) }), { verified: true });
    t.is((await challenge(app, user.userId, referenceId))!.failures, 1);
  });

  test(`[${kind}] a refused webhook delivery does not fail the send: the code is retried until the webhook takes it`, async (t) => {
    const hook = await otpWebhook(t);
    const clock = manualClock();
    const app = await boot(t, kind, WEBHOOK(hook.url), hook, clock);
    for (const [via, port] of adapters(app)) {
      const { user, referenceId, args, key } = await scenario(app);
      hook.status = 500;
      await port.sendOtp({ ...args, key: key('send') });
      t.truthy(await challenge(app, user.userId, referenceId), `${via}: the challenge is recorded at once`);
      t.is((await hook.sent(referenceId)).length, 0, `${via}: the webhook refused it`);

      hook.status = 200;
      t.is((await hook.sent(referenceId)).length, 0, `${via}: the retry waits for its backoff`);
      clock.advance(1000);
      const code = await hook.code(referenceId);
      t.is((await hook.sent(referenceId)).length, 1, `${via}: delivered once`);
      t.deepEqual(await port.verifyOtp({ ...args, code, key: key('verify') }), { verified: true }, via);
    }
  });

  test(`[${kind}] a hanging webhook holds up neither the send, nor 20 concurrent debits, nor another code, and gets its code once it answers`, async (t) => {
    const hook = await hangingWebhook(t);
    const app = await boot(t, kind, WEBHOOK(hook.url));
    const port = app.kernel.ports.get('user');
    const { referenceId, args, key } = await scenario(app);
    const payers = await Promise.all(Array.from({ length: 20 }, () => newUser(app)));
    const admin = await adminLogin(app);
    for (const p of payers) await grant(app, admin, p.userId, 10);

    await port.sendOtp({ ...args, key: key('send') });
    await hook.arrived;
    const debits = await Promise.all(
      payers.map((p, i) => port.debit({ userId: p.userId, amount: 100, key: `${referenceId}:debit:${i}` })),
    );
    t.is(debits.length, 20);
    t.true(debits.every((d) => d.balance === 900));
    t.is(hook.open(), 1, 'the webhook still holds the delivery while every debit has finished');
    t.deepEqual(hook.delivered, [], 'nothing is delivered yet');

    // Another code goes out beside the hanging one, not behind it.
    const other = await scenario(app);
    await port.sendOtp({ ...other.args, key: other.key('send') });
    for (let i = 0; i < 100 && hook.open() < 2; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    t.is(hook.open(), 2, 'the second delivery reached the webhook while the first still hangs');

    hook.release();
    await settleOutbox(app);
    t.deepEqual(hook.delivered.map((d) => d.reference_id).sort(), [referenceId, other.referenceId].sort());
    const code = hook.delivered.find((d) => d.reference_id === referenceId)!.code;
    t.deepEqual(await port.verifyOtp({ ...args, code, key: key('verify') }), {
      verified: true,
    });
  });

  test(`[${kind}] concurrent wrong codes never get past the limit of three`, async (t) => {
    const hook = await otpWebhook(t);
    const app = await boot(t, kind, WEBHOOK(hook.url), hook);
    const ports = adapters(app).map(([, port]) => port);
    const { user, referenceId, args, key } = await scenario(app);
    await ports[0].sendOtp({ ...args, key: key('send') });
    const code = await hook.code(referenceId);

    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        outcome(ports[i % 2].verifyOtp({ ...args, code: wrong(code), key: key(`w${i}`) })),
      ),
    );
    t.is(answers.filter((a) => a === 'OTP_INVALID').length, 2);
    t.is(answers.filter((a) => a === 'OTP_MAX_RETRIES').length, 10);
    t.is((await challenge(app, user.userId, referenceId))!.failures, 3);
    t.is(await outcome(ports[1].verifyOtp({ ...args, code, key: key('right') })), 'OTP_MAX_RETRIES');
  });

  test(`[${kind}] an expired code answers OTP_EXPIRED, is not counted as a failure, and a new code works`, async (t) => {
    const hook = await otpWebhook(t);
    const clock = manualClock();
    const app = await boot(t, kind, { ...WEBHOOK(hook.url), OTP_TTL_SECONDS: '1' }, hook, clock);
    const cases = await Promise.all(
      adapters(app).map(async ([via, port]) => ({ via, port, ...(await scenario(app)) })),
    );
    for (const c of cases) await c.port.sendOtp({ ...c.args, key: c.key('send') });
    await settleOutbox(app);
    clock.advance(1000);

    for (const { via, port, user, referenceId, args, key } of cases) {
      const code = await hook.code(referenceId);
      t.is(await outcome(port.verifyOtp({ ...args, code, key: key('late') })), 'OTP_EXPIRED', via);
      t.is(await outcome(port.verifyOtp({ ...args, code: wrong(code), key: key('late-wrong') })), 'OTP_EXPIRED', via);
      t.is((await challenge(app, user.userId, referenceId))!.failures, 0, via);

      await port.sendOtp({ ...args, key: key('resend') });
      const fresh = { ...args, code: await hook.code(referenceId), key: key('fresh') };
      t.deepEqual(await port.verifyOtp(fresh), { verified: true }, via);
    }
  });

  test(`[${kind}] smu: SendOTP gets the phone, the VerificationSid is kept, VerifyOTP approves, the budget holds here`, async (t) => {
    const smu = await fakeSmu(t);
    const app = await boot(t, kind, { OTP_PROVIDER: 'smu', SMU_API_URL: smu.url, SMU_API_KEY: 'smu-test-key' });
    for (const [via, port] of adapters(app)) {
      const { user, referenceId, args, key } = await scenario(app, '+6598887777');
      smu.calls.length = 0;
      await port.sendOtp({ ...args, key: key('send') });
      await settleOutbox(app);
      t.deepEqual(smu.calls, [
        { path: '/notification/SendOTP', body: { Mobile: '+6598887777' }, apiKey: 'smu-test-key' },
      ]);
      const row = (await challenge(app, user.userId, referenceId))!;
      t.regex(row.provider_sid!, /^VE[0-9a-f]{32}$/, via);
      t.is(row.code_hash, null, via);
      const sid = row.provider_sid;

      t.is(await outcome(port.verifyOtp({ ...args, code: '000000', key: key('w1') })), 'OTP_INVALID', via);
      t.deepEqual(smu.calls[1].body, { VerificationSid: sid, Code: '000000' }, via);
      t.deepEqual(await port.verifyOtp({ ...args, code: SMU_CODE, key: key('right') }), { verified: true }, via);
      const approved = (await challenge(app, user.userId, referenceId))!;
      t.not(approved.verified_at, null, via);
      t.not(approved.code_hash, null, via);
      t.false(approved.code_hash!.includes(SMU_CODE), via);

      const asked = smu.calls.length;
      t.deepEqual(await port.verifyOtp({ ...args, code: SMU_CODE, key: key('again') }), { verified: true }, via);
      t.is(await outcome(port.verifyOtp({ ...args, code: '111111', key: key('w2') })), 'OTP_INVALID', via);
      t.is(await outcome(port.verifyOtp({ ...args, code: '222222', key: key('w3') })), 'OTP_MAX_RETRIES', via);
      t.is(await outcome(port.verifyOtp({ ...args, code: SMU_CODE, key: key('late') })), 'OTP_MAX_RETRIES', via);
      t.is(smu.calls.length, asked, `${via}: an approved code is checked locally`);
    }
  });

  test(`[${kind}] smu: an unreachable SMU-Lab delays the code, and a verification it cannot answer counts nothing`, async (t) => {
    const smu = await fakeSmu(t);
    const clock = manualClock();
    const app = await boot(t, kind, { OTP_PROVIDER: 'smu', SMU_API_URL: smu.url }, undefined, clock);
    for (const [via, port] of adapters(app)) {
      const { user, referenceId, args, key } = await scenario(app);
      smu.status = 503;
      smu.calls.length = 0;
      await port.sendOtp({ ...args, key: key('send') });
      await settleOutbox(app);
      t.is(smu.calls.length, 1, `${via}: SendOTP was tried`);
      t.is((await challenge(app, user.userId, referenceId))!.provider_sid, null, via);

      smu.status = 200;
      clock.advance(1000);
      await settleOutbox(app);
      t.is(smu.calls.length, 2, `${via}: and tried again after its backoff`);
      t.is(smu.calls.at(-1)!.apiKey, undefined, `${via}: no key header without SMU_API_KEY`);
      t.regex((await challenge(app, user.userId, referenceId))!.provider_sid!, /^VE/, via);

      smu.status = 500;
      const verify = { ...args, code: SMU_CODE, key: key('verify') };
      t.is(await outcome(port.verifyOtp(verify)), 'SERVICE_UNAVAILABLE', via);
      t.is((await challenge(app, user.userId, referenceId))!.failures, 0, via);
      smu.status = 200;
      t.deepEqual(await port.verifyOtp(verify), { verified: true }, `${via}: the same key may be retried`);
    }
  });
}
