import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Joi from 'joi';

/** Settings keyed by module name; the module list itself lives in src/modules/index.ts. */
type PerModule<T> = Record<string, T>;

/** The kernel's own settings: processes, databases, secrets, HTTP, logging and jobs. */
export interface KernelConfig {
  env: 'development' | 'test' | 'production';
  port: number;
  modules: string;
  modulePorts: PerModule<number>;
  moduleUrls: PerModule<string>;
  dataDir: string;
  databaseUrl: string;
  moduleDatabaseUrls: PerModule<string>;
  sweepIntervalMs: number;
  jwtSecret: string;
  serviceToken: string;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  trustProxy: boolean;
  rateLimitPerMinute: number;
  /** Per-route limits (`login=10,register=5`); the other limited routes take rateLimitPerMinute. */
  rateLimits: string;
  corsOrigins: string;
  logLevel: string;
  shutdownTimeoutMs: number;
  /** Deadline of every call to another module's port, in-process or HTTP. */
  internalTimeoutMs: number;
  /** How long a background job's lease lasts unless renewed; a killed holder's lease runs out after it. */
  jobLeaseMs: number;
  /** Most connections a module's PostgreSQL pool opens, in each process. */
  databasePoolMax: number;
  /** Test-only fault points (`point=error|hang|exit`, comma-separated); refused in production. */
  faultInjection: string;
  /** Test-only: a file holding milliseconds added to the system clock, so a test moves a process's time. */
  clockOffsetFile: string;
}

/**
 * The settings modules declare. A module lists them in `defineModule({ settings })` and adds
 * their types to this interface by declaration merging.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled by the modules through declaration merging
export interface ModuleSettings {}

export type Config = KernelConfig & ModuleSettings;

/** What a module declares of its settings: a joi schema (with its default) and the variable per key. */
export interface SettingsDeclaration {
  keys: Record<string, Joi.Schema>;
  env: Record<string, string>;
  /** Rules that only production applies, e.g. a secret that must not keep its development default. */
  production?: Record<string, Joi.Schema>;
}

/** Like node-config: ./config under the working directory, or NODE_CONFIG_DIR. */
const configDir = (env: NodeJS.ProcessEnv) => resolve(env.NODE_CONFIG_DIR || join(process.cwd(), 'config'));
const port = Joi.number().integer().min(0).max(65535);
export const httpUrl = Joi.string().uri({ scheme: ['http', 'https'] });
const dbUrl = Joi.string()
  .uri({ scheme: ['postgres', 'postgresql'] })
  .allow('');
const perModule = (schema: Joi.Schema) =>
  Joi.object()
    .pattern(/^[a-z]+$/, schema)
    .required();
const FAULT = /^([a-z][\w-]*(\.[\w-]+)*=(error|hang|exit))?(,[a-z][\w-]*(\.[\w-]+)*=(error|hang|exit))*$/;

const kernelKeys: Record<keyof KernelConfig, Joi.Schema> = {
  env: Joi.string().valid('development', 'test', 'production').required(),
  port: port.required(),
  modules: Joi.string()
    .pattern(/^[a-z]+(,[a-z]+)*$/)
    .required(),
  modulePorts: perModule(port),
  moduleUrls: perModule(httpUrl),
  dataDir: Joi.string().min(1).required(),
  databaseUrl: dbUrl.required(),
  moduleDatabaseUrls: perModule(dbUrl),
  sweepIntervalMs: Joi.number().integer().min(10).max(3_600_000).required(),
  jwtSecret: Joi.string().min(16).required(),
  serviceToken: Joi.string().min(16).required(),
  accessTokenTtlSeconds: Joi.number().integer().min(1).required(),
  refreshTokenTtlSeconds: Joi.number().integer().min(1).required(),
  trustProxy: Joi.boolean().required(),
  rateLimitPerMinute: Joi.number().integer().min(1).required(),
  rateLimits: Joi.string()
    .pattern(/^\s*([a-z][a-z-]*\s*=\s*[1-9]\d{0,8}\s*(,\s*|$))*$/)
    .allow('')
    .required()
    .messages({ 'string.pattern.base': 'must be route=number pairs separated by commas, e.g. login=10,register=5' }),
  corsOrigins: Joi.string().allow('').required(),
  logLevel: Joi.string().valid('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent').required(),
  shutdownTimeoutMs: Joi.number().integer().min(100).required(),
  internalTimeoutMs: Joi.number().integer().min(10).max(120_000).required(),
  jobLeaseMs: Joi.number().integer().min(100).max(3_600_000).required(),
  databasePoolMax: Joi.number().integer().min(1).max(1000).required(),
  faultInjection: Joi.string().pattern(FAULT).allow('').required(),
  clockOffsetFile: Joi.string().allow('').required(),
};

const kernelProduction: Record<string, Joi.Schema> = {
  jwtSecret: Joi.string().min(32).invalid(Joi.ref('$defaults.jwtSecret')),
  serviceToken: Joi.string().min(32).invalid(Joi.ref('$defaults.serviceToken')),
  faultInjection: Joi.valid('').messages({ 'any.only': '{{#label}} must be empty in production' }),
  clockOffsetFile: Joi.valid('').messages({ 'any.only': '{{#label}} must be empty in production' }),
};

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

/** Picks the environment variables named in the variable map into a tree. */
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

/** The modules' declarations joined to the kernel's; two modules may share a key only under one variable. */
function combine(declarations: { name: string; settings?: SettingsDeclaration }[]) {
  const keys: Record<string, Joi.Schema> = { ...kernelKeys };
  const production: Record<string, Joi.Schema> = { ...kernelProduction };
  const variables: Record<string, string> = {};
  for (const { name, settings } of declarations) {
    if (!settings) continue;
    // A variable or a production rule for a key the module does not declare would go unread, or
    // replace another owner's rule (the kernel's JWT_SECRET in production, say).
    for (const key of [...Object.keys(settings.env), ...Object.keys(settings.production ?? {})]) {
      if (!(key in settings.keys)) throw new Error(`Module "${name}" names "${key}" but does not declare it`);
    }
    for (const [key, schema] of Object.entries(settings.keys)) {
      const variable = settings.env[key];
      if (key in kernelKeys) throw new Error(`Module "${name}" declares the kernel setting "${key}"`);
      if (key in keys && variables[key] !== variable) {
        throw new Error(`Module "${name}" declares the setting "${key}" under another variable than another module`);
      }
      keys[key] ??= schema;
      if (variable) variables[key] = variable;
    }
    Object.assign(production, settings.production);
  }
  return { keys, production, variables };
}

/**
 * Reads config/default.json, then config/<NODE_ENV>.json, then the environment variables (the
 * kernel's mapped in config/custom-environment-variables.json, each module's in its
 * declaration); validates and types the result. A bad value throws a ConfigError naming the
 * environment variable (or key) at fault.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv,
  declarations: { name: string; settings?: SettingsDeclaration }[],
): Config {
  const nodeEnv = env.NODE_ENV || 'development';
  const dir = configDir(env);
  const { keys, production, variables } = combine(declarations);
  const map: Tree = { ...readJson(dir, 'custom-environment-variables'), ...variables };
  const defaults = readJson(dir, 'default');
  const raw = merge(merge(merge(defaults, readJson(dir, nodeEnv)), { env: nodeEnv }), fromEnv(map, env));
  const schema = Joi.object(keys).when(Joi.object({ env: Joi.valid('production') }).unknown(), {
    then: Joi.object(production),
  });
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
  return value as Config;
}
