import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from '@koa/cors';
import helmet, { type HelmetOptions } from 'helmet';
import type { Middleware } from 'koa';
import { HttpMethodEnum, koaBody } from 'koa-body';
import compose from 'koa-compose';
import type { Config } from './config.js';
import { AppError, type ErrorCode } from './errors.js';
import { type Logger, requestScope } from './logger.js';
import { asOutage } from './persistence.js';
import { shapeFault } from './schemas.js';

const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Accepts a well-formed X-Correlation-ID or makes one; echoes it; scopes the request's logs. */
export const correlationId = (): Middleware => (ctx, next) => {
  const given = ctx.get('x-correlation-id');
  const id = CORRELATION_ID.test(given) ? given : randomUUID();
  ctx.state.correlationId = id;
  ctx.set('X-Correlation-ID', id);
  return requestScope.run({ correlationId: id }, next);
};

/** One JSON line per request: correlation id, module, method, path, status, duration. */
export const requestLog =
  (log: Logger): Middleware =>
  async (ctx, next) => {
    const start = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const duration_ms = Number(process.hrtime.bigint() - start) / 1e6;
      log.info(
        { method: ctx.method, path: ctx.path, status: ctx.status, duration_ms: Math.round(duration_ms * 100) / 100 },
        'request',
      );
    }
  };

/** Statuses that koa, koa-body and koa-router raise, as our codes. */
const HTTP_CODES: Record<number, [ErrorCode, string]> = {
  400: ['VALIDATION_ERROR', 'The request body is not valid JSON.'],
  404: ['NOT_FOUND', 'No such route.'],
  405: ['METHOD_NOT_ALLOWED', 'This method is not allowed on this route.'],
  413: ['PAYLOAD_TOO_LARGE', 'The request body is larger than 64 KiB.'],
  415: ['UNSUPPORTED_MEDIA_TYPE', 'The request body must be application/json.'],
  429: ['RATE_LIMITED', 'Too many requests; slow down.'],
  503: ['SERVICE_UNAVAILABLE', 'A service this call needs is unavailable.'],
};

function toAppError(thrown: unknown): AppError | undefined {
  const err = asOutage(thrown);
  if (err instanceof AppError) return err;
  const status =
    (err as { status?: number; statusCode?: number })?.status ?? (err as { statusCode?: number })?.statusCode;
  const known = status ? HTTP_CODES[status] : undefined;
  return known ? new AppError(known[0], known[1]) : undefined;
}

/** The envelope and error boundary: every failure leaves as `{success:false, error_code, message}`. */
export const errors =
  (log: Logger): Middleware =>
  async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new AppError('NOT_FOUND', 'No such route.');
    } catch (err) {
      let appError = toAppError(err);
      if (!appError) {
        const id = ctx.state.correlationId as string;
        log.error({ err }, 'unhandled error');
        appError = new AppError('INTERNAL_ERROR', `Internal error; quote correlation id ${id} to support.`);
      } else if (appError.status >= 500) {
        log.warn({ error_code: appError.code, err: err instanceof AppError ? undefined : err }, appError.message);
      }
      ctx.status = appError.status;
      ctx.body = appError.toJSON();
      if (appError.code === 'METHOD_NOT_ALLOWED') {
        // A 405 must say what is allowed (RFC 9110); the router throws without setting it.
        const matched = (ctx as { matched?: { methods: string[] }[] }).matched ?? [];
        const allowed = [...new Set(matched.flatMap((layer) => layer.methods))];
        if (allowed.length) ctx.set('Allow', allowed.join(', '));
      }
      if (err instanceof Error && 'headers' in err && err.headers && typeof err.headers === 'object') {
        ctx.set(err.headers as Record<string, string>);
      }
    }
  };

export const BODY_LIMIT = 64 * 1024;

/** JSON bodies only, at most 64 KiB; anything else on a request with a body is 415. */
export const jsonBody = (): Middleware => {
  const parse = koaBody({
    json: true,
    jsonStrict: false,
    jsonLimit: BODY_LIMIT,
    multipart: false,
    urlencoded: false,
    text: false,
    includeUnparsed: true,
    parsedMethods: [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH, HttpMethodEnum.DELETE],
    // A body that fails to decompress (bad gzip, deflate or brotli) is the client's fault, not a 500.
    onError: (err) => {
      throw (err as { status?: number }).status
        ? err
        : new AppError('VALIDATION_ERROR', 'The request body could not be decoded.');
    },
  });
  return async (ctx, next) => {
    const length = Number(ctx.get('content-length') || 0);
    if (length > BODY_LIMIT) throw new AppError('PAYLOAD_TOO_LARGE', 'The request body is larger than 64 KiB.');
    const hasBody = length > 0 || ctx.get('transfer-encoding') !== '';
    if (hasBody && ['POST', 'PUT', 'PATCH', 'DELETE'].includes(ctx.method) && !ctx.is('application/json')) {
      throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'The request body must be application/json.');
    }
    // Checked here so that the internal routes, which have no route schemas, are covered too.
    // koa-body has no hook between reading the text and JSON.parse, but V8 parses iteratively and
    // the size limit bounds what it builds; the check comes right after, before anything that
    // recurses (joi, the handlers, the ports behind the internal routes) is handed the value.
    return parse(ctx, () => {
      const fault = shapeFault(ctx.request.body, 'body');
      if (fault) throw new AppError('VALIDATION_ERROR', 'The request body is invalid.', [fault]);
      return next();
    });
  };
};

/**
 * The headers helmet sets with these options, asked of it once: without a content security
 * policy none of them depends on the request, and setting them from a list costs a fraction of
 * running helmet's dozen middlewares on every response.
 */
function securityHeaders(options: HelmetOptions): Middleware {
  const set: Record<string, string> = {};
  const removed: string[] = [];
  const res = {
    setHeader: (name: string, value: unknown) => {
      set[name] = String(value);
    },
    removeHeader: (name: string) => removed.push(name),
  };
  let done = false;
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, () => {
    done = true;
  });
  if (!done) throw new Error('helmet did not finish synchronously');
  return (ctx, next) => {
    ctx.set(set);
    for (const name of removed) ctx.remove(name);
    return next();
  };
}

/**
 * Security headers and CORS for what browsers call. Calls between slices (`/internal/*`) come
 * from our own processes, never from a browser, and skip both: on the hot paths they were a tenth
 * of the work and half the bytes of every response.
 */
export const security = (config: Config): Middleware => {
  const origins = config.corsOrigins
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  const chain: Middleware[] = [securityHeaders({ contentSecurityPolicy: false, crossOriginEmbedderPolicy: false })];
  if (origins.length) {
    chain.push(
      cors({
        origin: (ctx) => (origins.includes('*') ? '*' : origins.includes(ctx.get('origin')) ? ctx.get('origin') : ''),
        exposeHeaders: ['X-Correlation-ID', 'Retry-After'],
        allowHeaders: ['Authorization', 'Content-Type', 'X-Correlation-ID', 'Idempotency-Key'],
      }),
    );
  }
  const browserFacing = compose(chain);
  return (ctx, next) => (ctx.path.startsWith('/internal/') ? next() : browserFacing(ctx, next));
};
