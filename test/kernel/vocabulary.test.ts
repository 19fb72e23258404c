import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import Joi from 'joi';
import { loadAppConfig } from '../../src/app.js';
import { type Config, loadConfig } from '../../src/kernel/config.js';
import { errorTable, isErrorCode, KERNEL_ERRORS } from '../../src/kernel/errors.js';
import { defineModule } from '../../src/kernel/module.js';
import { sharedApp } from '../helpers/app.js';
import { sources } from '../helpers/sources.js';

// Only the error table and the OpenAPI document are read from the app: SQLite is enough.
const app = sharedApp('sqlite');
const moduleCodes = () => app.kernel.loaded.flatMap((m) => Object.entries(m.errors ?? {}));
const base = { NODE_ENV: 'test' };

const tiny = (name: string, errors: Record<string, number>) =>
  defineModule({ name, defaultPort: 5950, entities: [], migrations: [], errors, start: () => ({ routers: [] }) });

test('the kernel’s error table holds only the kernel’s own codes', (t) => {
  t.deepEqual(Object.keys(KERNEL_ERRORS).sort(), [
    'FORBIDDEN',
    'IDEMPOTENCY_CONFLICT',
    'INTERNAL_ERROR',
    'INVALID_UUID',
    'METHOD_NOT_ALLOWED',
    'NOT_FOUND',
    'PAYLOAD_TOO_LARGE',
    'RATE_LIMITED',
    'SERVICE_UNAVAILABLE',
    'TOKEN_EXPIRED',
    'UNAUTHORIZED',
    'UNSUPPORTED_MEDIA_TYPE',
    'VALIDATION_ERROR',
  ]);
  const owned = moduleCodes().map(([code]) => code);
  t.true(owned.includes('USER_NOT_FOUND') && owned.includes('SEAT_NOT_FOUND'), owned.join(', '));
  t.deepEqual(
    owned.filter((code) => code in KERNEL_ERRORS),
    [],
  );
});

test('the merged table has every module’s codes with their statuses', (t) => {
  const table = errorTable();
  for (const [code, status] of moduleCodes()) t.is(table[code], status, code);
  for (const [code, status] of Object.entries(KERNEL_ERRORS)) t.is(table[code], status, code);
});

test('a module that gives a known code another status is refused at defineModule, naming both owners', (t) => {
  t.throws(() => tiny('vocabclash', { USER_NOT_FOUND: 400 }), {
    message: 'Module "vocabclash" declares USER_NOT_FOUND as 400, but user declares it as 404',
  });
  t.throws(() => tiny('vocabkernel', { NOT_FOUND: 410 }), {
    message: 'Module "vocabkernel" declares NOT_FOUND as 410, but kernel declares it as 404',
  });
  t.notThrows(() => tiny('vocabsame', { USER_NOT_FOUND: 404, VOCAB_SAME_NEW: 422 }), 'the same status is no conflict');
  t.is(errorTable().VOCAB_SAME_NEW, 422);
});

test('a refused module adds none of its codes to the table', (t) => {
  t.throws(() => tiny('vocabpartial', { VOCAB_PARTIAL_NEW: 400, SEAT_NOT_FOUND: 400 }), { message: /SEAT_NOT_FOUND/ });
  t.false(isErrorCode('VOCAB_PARTIAL_NEW'));
  t.false('VOCAB_PARTIAL_NEW' in errorTable());
});

const setting = (name: string, keys: Record<string, Joi.Schema>, env: Record<string, string>, production = {}) => ({
  name,
  settings: { keys, env, production },
});
/** The app's own modules, whose settings config/test.json sets. */
const appModules = () => app.kernel.loaded;

test('a module setting that reuses a kernel key, or a key under two variables, is refused by loadConfig', (t) => {
  const mine = (name: string, variable: string) =>
    setting(name, { vocabTtl: Joi.number().default(1) }, { vocabTtl: variable });
  const kernelKey = setting('vocabport', { port: Joi.number() }, { port: 'VOCAB_PORT' });
  t.throws(() => loadConfig(base, [...appModules(), kernelKey]), {
    message: 'Module "vocabport" declares the kernel setting "port"',
  });
  t.throws(() => loadConfig(base, [...appModules(), mine('vocaba', 'VOCAB_A_TTL'), mine('vocabb', 'VOCAB_B_TTL')]), {
    message: /Module "vocabb" declares the setting "vocabTtl" under another variable/,
  });
  const shared = loadConfig({ ...base, VOCAB_TTL: '7' }, [
    ...appModules(),
    mine('vocaba', 'VOCAB_TTL'),
    mine('vocabb', 'VOCAB_TTL'),
  ]);
  t.is((shared as Config & { vocabTtl: number }).vocabTtl, 7, 'two modules may share a key under one variable');
});

test('a module cannot set the production rule of a setting it does not declare', (t) => {
  // Otherwise a module could replace the kernel's rule, e.g. let the default JWT_SECRET into production.
  const weakener = setting('vocabweak', {}, {}, { jwtSecret: Joi.any() });
  t.throws(() => loadConfig(base, [...appModules(), weakener]), { message: /Module "vocabweak".*"jwtSecret"/ });
  const stray = setting('vocabstray', {}, { vocabNothing: 'VOCAB_NOTHING' });
  t.throws(() => loadConfig(base, [...appModules(), stray]), { message: /Module "vocabstray".*"vocabNothing"/ });
});

/** The variables the README's configuration table lists, in its order. */
function readmeVariables(): string[] {
  const readme = readFileSync(join(process.cwd(), 'README.md'), 'utf8');
  const section = readme.split(/^## Configuration$/m)[1].split(/^## /m)[0];
  const rows = section.split('\n').filter((line) => line.startsWith('| `'));
  return rows.flatMap((row) => [...row.split('|')[1].matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((m) => m[1]));
}

/** A copy of config/ whose test file sets another port: what NODE_CONFIG_DIR changes. */
function otherConfigDir(t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tr-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(process.cwd(), 'config'), dir, { recursive: true });
  const testFile = join(dir, 'test.json');
  writeFileSync(testFile, JSON.stringify({ ...JSON.parse(readFileSync(testFile, 'utf8')), port: 8765 }));
  return dir;
}

const PEER = 'http://127.0.0.1:9';
/** Per variable: the environment that sets it (with what it needs), and the config key it must change. */
const READS: Record<string, [Record<string, string>, keyof Config]> = {
  NODE_ENV: [{ NODE_ENV: 'development' }, 'env'],
  PORT: [{ PORT: '8123' }, 'port'],
  MODULES: [{ MODULES: 'user' }, 'modules'],
  DATA_DIR: [{ DATA_DIR: './other-data' }, 'dataDir'],
  DATABASE_URL: [{ DATABASE_URL: 'postgres://db/x' }, 'databaseUrl'],
  HOLD_TTL_SECONDS: [{ HOLD_TTL_SECONDS: '7' }, 'holdTtlSeconds'],
  MAX_SEATS_PER_ORDER: [{ MAX_SEATS_PER_ORDER: '7' }, 'maxSeatsPerOrder'],
  MAX_HELD_SEATS_PER_USER: [{ MAX_HELD_SEATS_PER_USER: '7' }, 'maxHeldSeatsPerUser'],
  QR_TTL_SECONDS: [{ QR_TTL_SECONDS: '7' }, 'qrTtlSeconds'],
  OTP_TTL_SECONDS: [{ OTP_TTL_SECONDS: '7' }, 'otpTtlSeconds'],
  SWEEP_INTERVAL_MS: [{ SWEEP_INTERVAL_MS: '500' }, 'sweepIntervalMs'],
  JWT_SECRET: [{ JWT_SECRET: 'another-jwt-secret-0123456789' }, 'jwtSecret'],
  QR_ENCRYPTION_KEY: [{ QR_ENCRYPTION_KEY: 'ab'.repeat(32) }, 'qrEncryptionKey'],
  SERVICE_TOKEN: [{ SERVICE_TOKEN: 'another-service-token-0123' }, 'serviceToken'],
  ADMIN_EMAIL: [{ ADMIN_EMAIL: 'boss@test.local' }, 'adminEmail'],
  ADMIN_PASSWORD: [{ ADMIN_PASSWORD: 'boss-password-1' }, 'adminPassword'],
  SEED_DEMO: [{ SEED_DEMO: 'true' }, 'seedDemo'],
  OTP_PROVIDER: [{ OTP_PROVIDER: 'smu', SMU_API_URL: PEER }, 'otpProvider'],
  OTP_DELIVERY: [{ OTP_DELIVERY: 'webhook', OTP_WEBHOOK_URL: PEER }, 'otpDelivery'],
  OTP_WEBHOOK_URL: [{ OTP_WEBHOOK_URL: PEER }, 'otpWebhookUrl'],
  SMU_API_URL: [{ SMU_API_URL: PEER }, 'smuApiUrl'],
  SMU_API_KEY: [{ SMU_API_KEY: 'key' }, 'smuApiKey'],
  PAYMENT_PROVIDER: [{ PAYMENT_PROVIDER: 'stripe', STRIPE_SECRET_KEY: 'sk_test_x' }, 'paymentProvider'],
  PAYMENT_CURRENCY: [{ PAYMENT_CURRENCY: 'eur' }, 'paymentCurrency'],
  STRIPE_SECRET_KEY: [{ STRIPE_SECRET_KEY: 'sk_test_x' }, 'stripeSecretKey'],
  STRIPE_WEBHOOK_SECRET: [{ STRIPE_WEBHOOK_SECRET: 'whsec_another' }, 'stripeWebhookSecret'],
  STRIPE_API_URL: [{ STRIPE_API_URL: PEER }, 'stripeApiUrl'],
  ACCESS_TOKEN_TTL_SECONDS: [{ ACCESS_TOKEN_TTL_SECONDS: '60' }, 'accessTokenTtlSeconds'],
  REFRESH_TOKEN_TTL_SECONDS: [{ REFRESH_TOKEN_TTL_SECONDS: '60' }, 'refreshTokenTtlSeconds'],
  TRUST_PROXY: [{ TRUST_PROXY: 'true' }, 'trustProxy'],
  RATE_LIMIT_PER_MINUTE: [{ RATE_LIMIT_PER_MINUTE: '50' }, 'rateLimitPerMinute'],
  RATE_LIMITS: [{ RATE_LIMITS: 'login=3,register=2' }, 'rateLimits'],
  CORS_ORIGINS: [{ CORS_ORIGINS: 'https://a.example' }, 'corsOrigins'],
  LOG_LEVEL: [{ LOG_LEVEL: 'warn' }, 'logLevel'],
  SHUTDOWN_TIMEOUT_MS: [{ SHUTDOWN_TIMEOUT_MS: '500' }, 'shutdownTimeoutMs'],
  INTERNAL_TIMEOUT_MS: [{ INTERNAL_TIMEOUT_MS: '1234' }, 'internalTimeoutMs'],
  JOB_LEASE_MS: [{ JOB_LEASE_MS: '4321' }, 'jobLeaseMs'],
  DATABASE_POOL_MAX: [{ DATABASE_POOL_MAX: '3' }, 'databasePoolMax'],
  CLOCK_OFFSET_FILE: [{ CLOCK_OFFSET_FILE: 'clock-offset' }, 'clockOffsetFile'],
  FAULT_INJECTION: [{ FAULT_INJECTION: 'user.debit=error' }, 'faultInjection'],
};
for (const name of ['USER', 'ORDER', 'EVENT', 'ORCHESTRATOR']) {
  READS[`${name}_PORT`] = [{ [`${name}_PORT`]: '6100' }, 'modulePorts'];
  READS[`${name}_URL`] = [{ [`${name}_URL`]: PEER }, 'moduleUrls'];
  READS[`${name}_DATABASE_URL`] = [{ [`${name}_DATABASE_URL`]: 'postgres://db/x' }, 'moduleDatabaseUrls'];
}

test('every variable of the README’s configuration table is still read, into the same setting', (t) => {
  const variables = readmeVariables();
  t.true(variables.includes('HOLD_TTL_SECONDS') && variables.length > 40, variables.join(' '));
  READS.NODE_CONFIG_DIR = [{ NODE_CONFIG_DIR: otherConfigDir(t) }, 'port'];
  const before = loadAppConfig(base);
  for (const variable of variables) {
    const reads = READS[variable];
    if (!reads) {
      t.fail(`${variable} is in the README but this test does not know what it sets`);
      continue;
    }
    const [env, key] = reads;
    t.notDeepEqual(loadAppConfig({ ...base, ...env })[key], before[key], `${variable} changes ${key}`);
  }
});

test('/openapi.json’s ErrorEnvelope lists every code of the kernel and of every module', async (t) => {
  const doc = (await app.request('GET', '/openapi.json')).body;
  const listed: string[] = doc.components.schemas.ErrorEnvelope.properties.error_code.enum;
  const codes = [...Object.keys(KERNEL_ERRORS), ...moduleCodes().map(([code]) => code)];
  t.deepEqual([...new Set([...codes, ...listed])].sort(), [...listed].sort(), 'every code is listed');
  t.true(listed.every(isErrorCode), 'and only codes');
});

/** The string literals of a TypeScript source, comments left out. */
function stringLiterals(source: string): string[] {
  const tokens = /\/\/[^\n]*|\/\*[\s\S]*?\*\/|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`/g;
  return [...source.matchAll(tokens)].map((m) => m[0]).filter((token) => !token.startsWith('/'));
}

test('no source under src/kernel names a module’s error code in a string', (t) => {
  t.deepEqual(stringLiterals("// 'A_B'\nconst x = 'SEAT_NOT_FOUND'; /* \"C\" */ f(`x OTP_EXPIRED`);"), [
    "'SEAT_NOT_FOUND'",
    '`x OTP_EXPIRED`',
  ]);
  const files = sources('src/kernel');
  t.true(files.includes('src/kernel/errors.ts'), files.join(', '));
  const codes = moduleCodes().map(([code]) => code);
  const found = files.flatMap((file) => {
    const literals = stringLiterals(readFileSync(join(process.cwd(), file), 'utf8'));
    return codes
      .filter((code) => literals.some((s) => new RegExp(`\\b${code}\\b`).test(s)))
      .map((c) => `${file}: ${c}`);
  });
  t.deepEqual(found, []);
});
