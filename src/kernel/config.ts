import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Joi from 'joi';

/** Settings keyed by module name; the module list itself lives in src/modules/index.ts. */
type PerModule<T> = Record<string, T>;

export interface Config {
  env: 'development' | 'test' | 'production';
  port: number;
  modules: string;
  modulePorts: PerModule<number>;
  moduleUrls: PerModule<string>;
  dataDir: string;
  databaseUrl: string;
  moduleDatabaseUrls: PerModule<string>;
  holdTtlSeconds: number;
  qrTtlSeconds: number;
  otpTtlSeconds: number;
  sweepIntervalMs: number;
  jwtSecret: string;
  qrEncryptionKey: Buffer;
  serviceToken: string;
  adminEmail: string;
  adminPassword: string;
  seedDemo: boolean;
  otpProvider: 'local' | 'smu';
  otpDelivery: 'log' | 'webhook';
  otpWebhookUrl: string;
  smuApiUrl: string;
  smuApiKey: string;
  paymentProvider: 'fake' | 'stripe';
  paymentCurrency: string;
  stripeSecretKey: string;
  stripeWebhookSecret: string;
  stripeApiUrl: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  trustProxy: boolean;
  rateLimitPerMinute: number;
  corsOrigins: string;
  logLevel: string;
  passwordHash: { memoryCost: number; timeCost: number };
  shutdownTimeoutMs: number;
}

/** Like node-config: ./config under the working directory, or NODE_CONFIG_DIR. */
const configDir = (env: NodeJS.ProcessEnv) => resolve(env.NODE_CONFIG_DIR || join(process.cwd(), 'config'));
const port = Joi.number().integer().min(0).max(65535);
const url = Joi.string().uri({ scheme: ['http', 'https'] });
const dbUrl = Joi.string()
  .uri({ scheme: ['postgres', 'postgresql'] })
  .allow('');
const perModule = (schema: Joi.Schema) =>
  Joi.object()
    .pattern(/^[a-z]+$/, schema)
    .required();

/** A 32-byte key: exactly 64 hex characters, otherwise base64 that decodes to 32 bytes. */
const aesKey = Joi.string()
  .custom((value: string, helpers) => {
    const key = /^[0-9a-fA-F]{64}$/.test(value) ? Buffer.from(value, 'hex') : Buffer.from(value, 'base64');
    if (key.length !== 32 || (!/^[0-9a-fA-F]{64}$/.test(value) && key.toString('base64') !== value)) {
      return helpers.message({ custom: 'must be 32 bytes written as 64 hex characters or as base64' });
    }
    return key;
  })
  .required();

const schema = Joi.object<Config>({
  env: Joi.string().valid('development', 'test', 'production').required(),
  port: port.required(),
  modules: Joi.string()
    .pattern(/^[a-z]+(,[a-z]+)*$/)
    .required(),
  modulePorts: perModule(port),
  moduleUrls: perModule(url),
  dataDir: Joi.string().min(1).required(),
  databaseUrl: dbUrl.required(),
  moduleDatabaseUrls: perModule(dbUrl),
  holdTtlSeconds: Joi.number().integer().min(1).max(86400).required(),
  qrTtlSeconds: Joi.number().integer().min(1).max(3600).required(),
  otpTtlSeconds: Joi.number().integer().min(1).max(86400).required(),
  sweepIntervalMs: Joi.number().integer().min(10).max(3_600_000).required(),
  jwtSecret: Joi.string().min(16).required(),
  qrEncryptionKey: aesKey,
  serviceToken: Joi.string().min(16).required(),
  adminEmail: Joi.string().email({ tlds: false }).allow('').required(),
  adminPassword: Joi.string().min(8).max(128).allow('').required(),
  seedDemo: Joi.boolean().required(),
  otpProvider: Joi.string().valid('local', 'smu').required(),
  otpDelivery: Joi.string().valid('log', 'webhook').required(),
  // Key-level conditions: an object-level `.when` would be concatenated with `allow('')` and so let '' through.
  otpWebhookUrl: Joi.when('otpDelivery', { is: 'webhook', then: url, otherwise: url.allow('') }).required(),
  smuApiUrl: Joi.when('otpProvider', { is: 'smu', then: url, otherwise: url.allow('') }).required(),
  smuApiKey: Joi.string().allow('').required(),
  paymentProvider: Joi.string().valid('fake', 'stripe').required(),
  paymentCurrency: Joi.string().lowercase().length(3).required(),
  stripeSecretKey: Joi.when('paymentProvider', {
    is: 'stripe',
    then: Joi.string(),
    otherwise: Joi.string().allow(''),
  }).required(),
  stripeWebhookSecret: Joi.string().min(8).required(),
  stripeApiUrl: url.allow('').required(),
  accessTokenTtlSeconds: Joi.number().integer().min(1).required(),
  refreshTokenTtlSeconds: Joi.number().integer().min(1).required(),
  trustProxy: Joi.boolean().required(),
  rateLimitPerMinute: Joi.number().integer().min(1).required(),
  corsOrigins: Joi.string().allow('').required(),
  logLevel: Joi.string().valid('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent').required(),
  passwordHash: Joi.object({
    memoryCost: Joi.number().integer().min(1024).required(),
    timeCost: Joi.number().integer().min(1).required(),
  }).required(),
  shutdownTimeoutMs: Joi.number().integer().min(100).required(),
}).when(Joi.object({ env: Joi.valid('production') }).unknown(), {
  then: Joi.object({
    jwtSecret: Joi.string().min(32).invalid(Joi.ref('$defaults.jwtSecret')),
    serviceToken: Joi.string().min(32).invalid(Joi.ref('$defaults.serviceToken')),
    stripeWebhookSecret: Joi.invalid(Joi.ref('$defaults.stripeWebhookSecret')),
    qrEncryptionKey: Joi.invalid(Joi.ref('$defaults.qrEncryptionKey')),
  }),
});

export class ConfigError extends Error {}

type Tree = { [key: string]: Tree | string | number | boolean };

function readJson(dir: string, name: string): Tree {
  const file = join(dir, `${name}.json`);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Tree) : {};
}

function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = typeof v === 'object' && typeof b === 'object' ? merge(b, v) : v;
  }
  return out;
}

/** Picks the environment variables named in custom-environment-variables.json into a tree. */
function fromEnv(map: Tree, env: NodeJS.ProcessEnv): Tree {
  const out: Tree = {};
  for (const [k, v] of Object.entries(map)) {
    if (typeof v === 'object') {
      const sub = fromEnv(v, env);
      if (Object.keys(sub).length) out[k] = sub;
    } else if (env[String(v)] !== undefined) {
      out[k] = env[String(v)] as string;
    }
  }
  return out;
}

function envName(path: (string | number)[], map: Tree): string {
  let node: Tree | string | number | boolean = map;
  for (const part of path) node = typeof node === 'object' ? node[String(part)] : node;
  return typeof node === 'string' ? node : path.join('.');
}

/**
 * Reads config/default.json, then config/<NODE_ENV>.json, then the environment variables mapped
 * in config/custom-environment-variables.json; validates and types the result. A bad value
 * throws a ConfigError naming the environment variable (or key) at fault.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const nodeEnv = env.NODE_ENV || 'development';
  const dir = configDir(env);
  const map = readJson(dir, 'custom-environment-variables');
  const defaults = readJson(dir, 'default');
  const raw = merge(merge(merge(defaults, readJson(dir, nodeEnv)), { env: nodeEnv }), fromEnv(map, env));
  const { value, error } = schema.validate(raw, {
    abortEarly: true,
    convert: true,
    allowUnknown: false,
    context: { defaults },
  });
  if (error) {
    const detail = error.details[0];
    const key = envName(detail.path, map);
    const why =
      detail.type === 'any.invalid' && nodeEnv === 'production'
        ? 'must be set to a non-default value in production'
        : detail.message.replace(/^"[^"]*" /, '');
    throw new ConfigError(`Invalid configuration: ${key} ${why}`);
  }
  return value;
}
