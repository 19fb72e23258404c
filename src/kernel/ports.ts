import Router from '@koa/router';
import type Joi from 'joi';
import { SERVICE_TOKEN_HEADER } from './auth.js';
import { AppError, isErrorCode } from './errors.js';
import { requestScope } from './logger.js';

/**
 * A module's port: the methods other modules may call. Every method takes one JSON object and
 * returns JSON, so the in-process implementation and the HTTP adapter are interchangeable.
 */
export interface PortDefinition {
  name: string;
  /** Argument schema per method; the internal route validates with it. */
  methods: Record<string, Joi.ObjectSchema>;
}

export type PortImpl = Record<string, (args: never) => Promise<unknown>>;

/** Resolves a port by module name: the local implementation, or an HTTP adapter to its slice. */
export interface Ports {
  get<T>(name: string): T;
}

const INTERNAL_TIMEOUT_MS = 10_000;

/**
 * The HTTP adapter: `port.method(args)` becomes `POST {baseUrl}/internal/{port}/{method}`. An
 * error envelope comes back as the same AppError the local implementation would have thrown.
 */
export function createHttpPort<T>(def: PortDefinition, baseUrl: string, serviceToken: string): T {
  const client: Record<string, (args: unknown) => Promise<unknown>> = {};
  for (const method of Object.keys(def.methods)) {
    client[method] = async (args) => {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        [SERVICE_TOKEN_HEADER]: serviceToken,
      };
      const correlationId = requestScope.getStore()?.correlationId;
      if (correlationId) headers['x-correlation-id'] = correlationId;
      let res: Response;
      try {
        res = await fetch(`${baseUrl}/internal/${def.name}/${method}`, {
          method: 'POST',
          headers,
          body: JSON.stringify(args ?? {}),
          signal: AbortSignal.timeout(INTERNAL_TIMEOUT_MS),
        });
      } catch {
        throw new AppError('SERVICE_UNAVAILABLE', `The ${def.name} service cannot be reached.`);
      }
      const body = (await res.json().catch(() => null)) as
        | { success: true; data: unknown }
        | { success: false; error_code: string; message: string; details?: [] }
        | null;
      if (body?.success === true) return body.data;
      if (body && body.success === false && isErrorCode(body.error_code) && res.status < 500) {
        throw new AppError(body.error_code, body.message, body.details);
      }
      if (res.status === 503) throw new AppError('SERVICE_UNAVAILABLE', `The ${def.name} service is unavailable.`);
      throw new Error(`${def.name}.${method} failed with HTTP ${res.status}`);
    };
  }
  return client as T;
}

function argumentError(def: PortDefinition, method: string, error: Joi.ValidationError) {
  return new AppError(
    'VALIDATION_ERROR',
    `Invalid arguments to ${def.name}.${method}.`,
    error.details.map((d) => ({ field: d.path.join('.'), message: d.message.replace(/"/g, '') })),
  );
}

/**
 * The in-process adapter: the implementation behind the same argument checks the internal
 * routes apply, so that a caller cannot tell the two adapters apart.
 */
export function createLocalPort<T>(def: PortDefinition, impl: PortImpl): T {
  const port: Record<string, (args: unknown) => Promise<unknown>> = {};
  for (const [method, schema] of Object.entries(def.methods)) {
    const fn = impl[method];
    if (typeof fn !== 'function') throw new Error(`Port "${def.name}" does not implement "${method}"`);
    port[method] = async (args) => {
      const { value, error } = schema.validate(args ?? {}, { abortEarly: false, convert: false });
      if (error) throw argumentError(def, method, error);
      return fn.call(impl, value as never);
    };
  }
  return port as T;
}

/** The internal routes that serve a port to other slices; mounted behind the service guard. */
export function createPortRouter(
  def: PortDefinition,
  port: Record<string, (args: unknown) => Promise<unknown>>,
): Router {
  const router = new Router({ prefix: `/internal/${def.name}` });
  for (const method of Object.keys(def.methods)) {
    router.post(`/${method}`, async (ctx) => {
      ctx.body = { success: true, data: (await port[method](ctx.request.body)) ?? null };
    });
  }
  return router;
}

/** Methods of a port definition, typed against its interface. */
export const portMethods = <T>(methods: { [K in keyof T]: Joi.ObjectSchema }): Record<string, Joi.ObjectSchema> =>
  methods as Record<string, Joi.ObjectSchema>;
