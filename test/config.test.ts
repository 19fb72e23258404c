import { randomBytes } from 'node:crypto';
import test from 'ava';
import { loadAppConfig as loadConfig } from '../src/app.js';
import { ConfigError } from '../src/kernel/config.js';
import { freePort, spawnServer, waitForHealth } from './helpers/process.js';

const base = { NODE_ENV: 'test' };
/** Production secrets that are long enough and not the shipped defaults. */
const production = {
  NODE_ENV: 'production',
  JWT_SECRET: randomBytes(32).toString('hex'),
  SERVICE_TOKEN: randomBytes(32).toString('hex'),
  STRIPE_WEBHOOK_SECRET: `whsec_${randomBytes(16).toString('hex')}`,
  QR_ENCRYPTION_KEY: randomBytes(32).toString('hex'),
  OTP_DELIVERY: 'webhook',
  OTP_WEBHOOK_URL: 'https://otp.example.com/deliver',
};

function refused(t: import('ava').ExecutionContext, env: Record<string, string>, variable: string) {
  const err = t.throws(() => loadConfig(env), { instanceOf: ConfigError }, JSON.stringify(env));
  t.true(err?.message.includes(variable), `${err?.message} names ${variable}`);
}

test('the test configuration loads and is typed', (t) => {
  const config = loadConfig({ ...base, PORT: '8123', HOLD_TTL_SECONDS: '2', SEED_DEMO: 'false' });
  t.is(config.env, 'test');
  t.is(config.port, 8123);
  t.is(config.holdTtlSeconds, 2);
  t.false(config.seedDemo);
  t.is(config.qrEncryptionKey.length, 32);
  t.is(config.accessTokenTtlSeconds, 900);
  t.is(config.refreshTokenTtlSeconds, 604800);
});

test('a bad value throws an error naming its environment variable', (t) => {
  const cases: [Record<string, string>, string][] = [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ USER_PORT: '-1' }, 'USER_PORT'],
    [{ HOLD_TTL_SECONDS: '0' }, 'HOLD_TTL_SECONDS'],
    [{ HOLD_TTL_SECONDS: '1.5' }, 'HOLD_TTL_SECONDS'],
    [{ ACCESS_TOKEN_TTL_SECONDS: 'soon' }, 'ACCESS_TOKEN_TTL_SECONDS'],
    [{ QR_ENCRYPTION_KEY: 'short' }, 'QR_ENCRYPTION_KEY'],
    [{ QR_ENCRYPTION_KEY: randomBytes(16).toString('hex') }, 'QR_ENCRYPTION_KEY'],
    [{ QR_ENCRYPTION_KEY: randomBytes(31).toString('base64') }, 'QR_ENCRYPTION_KEY'],
    [{ JWT_SECRET: 'too-short' }, 'JWT_SECRET'],
    [{ DATABASE_URL: 'mysql://localhost/x' }, 'DATABASE_URL'],
    [{ MODULES: 'User' }, 'MODULES'],
    [{ SEED_DEMO: 'maybe' }, 'SEED_DEMO'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ OTP_DELIVERY: 'webhook' }, 'OTP_WEBHOOK_URL'],
    [{ OTP_DELIVERY: 'webhook', OTP_WEBHOOK_URL: 'not a url' }, 'OTP_WEBHOOK_URL'],
    [{ OTP_PROVIDER: 'smu' }, 'SMU_API_URL'],
    [{ PAYMENT_PROVIDER: 'stripe' }, 'STRIPE_SECRET_KEY'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV'],
  ];
  for (const [env, variable] of cases) refused(t, { ...base, ...env }, variable);
});

test('the settings a provider needs are required only with that provider', (t) => {
  t.is(
    loadConfig({ ...base, OTP_DELIVERY: 'webhook', OTP_WEBHOOK_URL: 'http://127.0.0.1:9/otp' }).otpDelivery,
    'webhook',
  );
  t.is(loadConfig({ ...base, OTP_PROVIDER: 'smu', SMU_API_URL: 'http://127.0.0.1:9' }).otpProvider, 'smu');
  t.is(loadConfig({ ...base, PAYMENT_PROVIDER: 'stripe', STRIPE_SECRET_KEY: 'sk_test_x' }).paymentProvider, 'stripe');
  t.is(loadConfig(base).otpWebhookUrl, '');
});

test('QR_ENCRYPTION_KEY is read as 64 hex characters or as base64 of 32 bytes', (t) => {
  const key = randomBytes(32);
  t.deepEqual(loadConfig({ ...base, QR_ENCRYPTION_KEY: key.toString('hex') }).qrEncryptionKey, key);
  t.deepEqual(loadConfig({ ...base, QR_ENCRYPTION_KEY: key.toString('base64') }).qrEncryptionKey, key);
});

test('production refuses the default or a short JWT_SECRET and the other shipped secrets', (t) => {
  t.is(loadConfig(production).env, 'production');
  const { JWT_SECRET: _, ...noJwt } = production;
  refused(t, noJwt, 'JWT_SECRET');
  refused(t, { ...production, JWT_SECRET: 'x'.repeat(31) }, 'JWT_SECRET');
  refused(t, { ...production, JWT_SECRET: 'dev-only-jwt-secret-change-me-0123456789abcdef' }, 'JWT_SECRET');
  const { SERVICE_TOKEN: __, ...noToken } = production;
  refused(t, noToken, 'SERVICE_TOKEN');
  const { STRIPE_WEBHOOK_SECRET: ___, ...noWebhook } = production;
  refused(t, noWebhook, 'STRIPE_WEBHOOK_SECRET');
  const { QR_ENCRYPTION_KEY: ____, ...noQr } = production;
  refused(t, noQr, 'QR_ENCRYPTION_KEY');
});

test('production refuses log delivery of one-time passwords, which would write every code to the log', (t) => {
  const { OTP_DELIVERY: _, OTP_WEBHOOK_URL: __, ...unset } = production;
  refused(t, unset, 'OTP_DELIVERY');
  refused(t, { ...production, OTP_DELIVERY: 'log' }, 'OTP_DELIVERY');
  t.is(loadConfig({ ...unset, OTP_PROVIDER: 'smu', SMU_API_URL: 'https://smu.example.com' }).otpProvider, 'smu');
  t.is(loadConfig({ ...base, OTP_DELIVERY: 'log' }).otpDelivery, 'log', 'development and tests may log codes');
});

test('a production server with real secrets but OTP_DELIVERY unset refuses to start, naming OTP_DELIVERY', async (t) => {
  const { OTP_DELIVERY: _, OTP_WEBHOOK_URL: __, ...unset } = production;
  const server = spawnServer({ ...unset, PORT: String(await freePort()) });
  t.teardown(() => server.cleanup());
  t.not(await server.exited, 0);
  t.regex(server.output(), /OTP_DELIVERY/);
  t.notRegex(server.output(), /listening/);
});

test('production refuses fault injection', (t) => {
  refused(t, { ...production, FAULT_INJECTION: 'user.debit=error' }, 'FAULT_INJECTION');
});

test('the process refuses to start on a bad value, naming it', async (t) => {
  const server = spawnServer({ PORT: 'abc' });
  t.teardown(() => server.cleanup());
  t.not(await server.exited, 0);
  t.regex(server.output(), /PORT/);
});

test('MODULES naming an unknown module stops the start with a message naming it', async (t) => {
  const server = spawnServer({ MODULES: 'nope', PORT: String(await freePort()) });
  t.teardown(() => server.cleanup());
  t.not(await server.exited, 0);
  t.regex(server.output(), /nope/);
  t.regex(server.output(), /user/, 'the message lists the known modules');
});

test('MODULES=user serves the user module alone on USER_PORT', async (t) => {
  const port = await freePort();
  const server = spawnServer({ MODULES: 'user', USER_PORT: String(port), PORT: String(await freePort()) });
  t.teardown(() => server.cleanup());
  const health = await waitForHealth(server, `http://127.0.0.1:${port}`);
  t.like(health, { status: 'healthy', modules: ['user'], checks: { database: 'connected' } });
  const docs = await fetch(`http://127.0.0.1:${port}/openapi.json`).then((r) => r.json());
  t.truthy(docs.paths['/api/auth/login']);
  server.child.kill('SIGTERM');
  t.is(await server.exited, 0);
});
