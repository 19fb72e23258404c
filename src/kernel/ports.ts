import { Agent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import Router from '@koa/router';
import type Joi from 'joi';
import { SERVICE_TOKEN_HEADER } from './auth.js';
import { AppError, isErrorCode } from './errors.js';
import type { Faults } from './faults.js';
import { requestScope } from './logger.js';
import { fieldPath } from './schemas.js';

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
type Methods = Record<string, (args: unknown) => Promise<unknown>>;

/**
 * What a caller can tell of a call that did not answer: `not_delivered`, the request never
 * reached the other module (safe to retry); `unknown`, it was sent but no answer came (time-out,
 * reset, 5xx), so it may have been applied and a retry must carry the same idempotency key. A
 * client sees either as 503 SERVICE_UNAVAILABLE.
 */
export type Undelivered = 'not_delivered' | 'unknown';

export class PortCallError extends AppError {
  constructor(
    readonly outcome: Undelivered,
    readonly call: string,
    /** For the log: what the caller saw (a connection error, a deadline, an HTTP status). */
    readonly why: string,
  ) {
    super('SERVICE_UNAVAILABLE', `The ${call.split('.')[0]} service did not answer; try again shortly.`);
    this.name = 'PortCallError';
  }
}

/** The three outcomes of a failed port call: refused (a typed error), not delivered, or unknown. */
export function callOutcome(err: unknown): 'refused' | Undelivered {
  if (err instanceof PortCallError) return err.outcome;
  return err instanceof AppError && err.status < 500 ? 'refused' : 'unknown';
}

/** Errors of the connection phase: nothing was sent. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

type Envelope =
  | { success: true; data: unknown }
  | { success: false; error_code: string; message: string; details?: [] };

/**
 * Idle connections are closed here after this long, before the called slice's keep-alive timeout
 * (5 s, server.ts) closes them there: a call is never written to a connection being closed.
 */
const IDLE_MS = 4000;

/** One POST over a keep-alive connection, with one deadline for the whole exchange. */
function post(
  agent: Agent,
  url: URL,
  headers: Record<string, string>,
  payload: string,
  timeoutMs: number,
  call: string,
): Promise<{ status: number; body: Envelope | null }> {
  return new Promise((resolve, reject) => {
    // Whether the request may have reached the other side: not before a connection exists.
    let connected = false;
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        agent,
        headers: { ...headers, 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (err) => fail(new PortCallError('unknown', call, String(err))));
        res.on('end', () => {
          clearTimeout(timer);
          let body: Envelope | null = null;
          try {
            body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Envelope;
          } catch {}
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    const fail = (err: PortCallError) => {
      clearTimeout(timer);
      req.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new PortCallError(connected ? 'unknown' : 'not_delivered', call, 'no answer before the deadline')),
      timeoutMs,
    );
    req.on('socket', (socket) => {
      if (!socket.connecting) connected = true;
      else socket.once('connect', () => (connected = true));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      const code = err.code ?? '';
      fail(
        new PortCallError(
          !connected && NOT_CONNECTED.has(code) ? 'not_delivered' : 'unknown',
          call,
          code || String(err),
        ),
      );
    });
    req.end(payload);
  });
}

/**
 * The HTTP adapter: `port.method(args)` becomes `POST {baseUrl}/internal/{port}/{method}`. An
 * error envelope below 500 comes back as the same AppError the local implementation would have
 * thrown; anything else is a PortCallError that says whether the call may have been applied.
 * Calls go over node:http with keep-alive connections: a fraction of fetch's cost per call.
 */
export function createHttpPort<T>(def: PortDefinition, baseUrl: string, serviceToken: string, timeoutMs = 5000): T {
  const client: Methods = {};
  const agent = baseUrl.startsWith('https:')
    ? new HttpsAgent({ keepAlive: true, timeout: IDLE_MS })
    : new Agent({ keepAlive: true, timeout: IDLE_MS });
  for (const method of Object.keys(def.methods)) {
    const call = `${def.name}.${method}`;
    const url = new URL(`${baseUrl}/internal/${def.name}/${method}`);
    client[method] = async (args) => {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        [SERVICE_TOKEN_HEADER]: serviceToken,
      };
      const correlationId = requestScope.getStore()?.correlationId;
      if (correlationId) headers['x-correlation-id'] = correlationId;
      const { status, body } = await post(agent, url, headers, JSON.stringify(args ?? {}), timeoutMs, call);
      if (status < 500 && body?.success === true) return body.data;
      if (status < 500 && body?.success === false && isErrorCode(body.error_code)) {
        throw new AppError(body.error_code, body.message, body.details);
      }
      throw new PortCallError('unknown', call, `HTTP ${status}`);
    };
  }
  return client as T;
}

function argumentError(def: PortDefinition, method: string, error: Joi.ValidationError) {
  return new AppError(
    'VALIDATION_ERROR',
    `Invalid arguments to ${def.name}.${method}.`,
    error.details.map((d) => ({ field: fieldPath(d.path), message: d.message.replace(/"/g, '') })),
  );
}

/**
 * The serving side of a port, shared by the internal routes and the in-process adapter: argument
 * checks, the method's fault point (`<port>.<method>`), then the implementation.
 */
export function servePort(def: PortDefinition, impl: PortImpl, faults: Faults): Methods {
  const port: Methods = {};
  for (const [method, declared] of Object.entries(def.methods)) {
    // The options compiled in once: joi merges options passed to every call anew.
    const schema = declared.prefs({ abortEarly: false, convert: false });
    const fn = impl[method];
    if (typeof fn !== 'function') throw new Error(`Port "${def.name}" does not implement "${method}"`);
    port[method] = async (args) => {
      const { value, error } = schema.validate(args ?? {});
      if (error) throw argumentError(def, method, error);
      if (faults.enabled) await faults.at(`${def.name}.${method}`);
      return fn.call(impl, value as never);
    };
  }
  return port;
}

/**
 * A copy of a call's arguments as the wire would make it. Most calls are a flat object of ids and
 * numbers, which a spread copies whole; only nested values need structuredClone, at several times
 * the cost.
 */
function copyOf(args: unknown): unknown {
  if (typeof args !== 'object' || args === null) return args;
  for (const value of Object.values(args)) {
    if (typeof value === 'object' && value !== null) return structuredClone(args);
  }
  return { ...args };
}

/**
 * The in-process adapter: the served port behind the same deadline and the same outcomes as the
 * HTTP adapter, so that a caller cannot tell the two apart. A call past the deadline goes on in
 * the background, as a request to a slow slice would.
 */
export function createLocalPort<T>(def: PortDefinition, served: Methods, timeoutMs: number): T {
  const port: Methods = {};
  for (const method of Object.keys(def.methods)) {
    const call = `${def.name}.${method}`;
    port[method] = async (args) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new PortCallError('unknown', call, 'no answer before the deadline')),
          timeoutMs,
        );
      });
      try {
        // A deep copy, as the wire would make: the callee cannot share objects with its caller.
        return await Promise.race([served[method](copyOf(args)), deadline]);
      } catch (err) {
        if (err instanceof AppError && err.status < 500) throw err;
        if (err instanceof PortCallError) throw err;
        throw new PortCallError('unknown', call, String((err as Error)?.message ?? err));
      } finally {
        clearTimeout(timer);
      }
    };
  }
  return port as T;
}

/** The internal routes that serve a port to other slices; mounted behind the service guard. */
export function createPortRouter(def: PortDefinition, served: Methods): Router {
  const router = new Router({ prefix: `/internal/${def.name}` });
  for (const method of Object.keys(def.methods)) {
    router.post(`/${method}`, async (ctx) => {
      ctx.body = { success: true, data: (await served[method](ctx.request.body)) ?? null };
    });
  }
  return router;
}

/** Methods of a port definition, typed against its interface. */
export const portMethods = <T>(methods: { [K in keyof T]: Joi.ObjectSchema }): Record<string, Joi.ObjectSchema> =>
  methods as Record<string, Joi.ObjectSchema>;
