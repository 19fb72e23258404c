import Router from '@koa/router';
import Joi from 'joi';
import joiToSwagger from 'joi-to-swagger';
import type { Context, Middleware } from 'koa';
import { type Access, guard, type Principal } from './auth.js';
import { AppError, type ErrorCode, statusOf } from './errors.js';
import { requestScope } from './logger.js';
import { fieldPath, type Page, pagination, shapeFault, toPage, UUID_ERROR } from './schemas.js';

type Method = 'get' | 'post' | 'patch' | 'put' | 'delete';
type Schema<T = unknown> = Joi.ObjectSchema<T>;
type Inferred<S> = S extends Joi.ObjectSchema<infer T> ? T : Record<string, never>;

export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  summary: string;
  description?: string;
  access: Access;
  params?: Schema<P>;
  query?: Schema<Q>;
  /** Request headers the route reads (lower-case names); other headers pass. */
  headers?: Schema;
  body?: Schema<B>;
  /** Schema of `data` in the success envelope (documentation only). */
  response?: Joi.Schema;
  status?: number;
  paginated?: boolean;
  /** Error codes this route can answer beyond the ones its access and schemas imply. */
  errors?: ErrorCode[];
  /** Middleware run before validation (rate limits, raw-body checks). */
  before?: Middleware[];
}

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  headers: Record<string, string | undefined>;
  body: B;
  page: Page;
  principal: Principal;
  ctx: Context;
}

export type Paged<T> = { items: T[]; total: number };

type Handler<P, Q, B> = (input: RouteInput<P, Q, B>) => Promise<unknown> | unknown;

export interface ApiRouter {
  readonly module: string;
  /** The OpenAPI tag its operations are listed under. */
  readonly tag: string;
  readonly router: Router;
  readonly paths: Record<string, Record<string, object>>;
  route<PS extends Schema | undefined, QS extends Schema | undefined, BS extends Schema | undefined>(
    method: Method,
    path: string,
    spec: RouteSpec & { params?: PS; query?: QS; body?: BS },
    handler: Handler<Inferred<PS>, Inferred<QS>, Inferred<BS>>,
  ): ApiRouter;
}

/** joi-to-swagger is CommonJS; its default export arrives wrapped under ESM. */
const toSchema = ((joiToSwagger as unknown as { default?: typeof joiToSwagger }).default ??
  joiToSwagger) as unknown as (schema: Joi.Schema) => { swagger: object };

/** What a route that declares no query or body accepts: nothing, so that a stray field is refused, not ignored. */
const NOTHING = Joi.object({});

/** Each route schema with its validation options compiled in once: joi merges options on every call otherwise. */
const compiled = new WeakMap<Schema, Schema>();
function withPrefs<T>(schema: Schema<T>): Schema<T> {
  let out = compiled.get(schema);
  if (!out) {
    out = schema.prefs({ abortEarly: false, convert: true });
    compiled.set(schema, out);
  }
  return out as Schema<T>;
}

/**
 * Runs a joi schema over one part of the request; the first fault decides the error code. The
 * body's shape was checked where it was parsed (jsonBody); the other parts are checked here.
 */
function check<T>(schema: Schema<T> | undefined, value: unknown, where: string): T {
  const fault = where === 'body' ? undefined : shapeFault(value, where);
  if (fault) throw new AppError('VALIDATION_ERROR', `The request ${where} is invalid.`, [fault]);
  if (!schema) return {} as T;
  // No body at all reads as `{}`; a JSON `null` is a body, and not an object.
  const { value: out, error } = withPrefs(schema).validate(value === undefined ? {} : value);
  if (!error) return out as T;
  const details = error.details.map((d) => ({
    field: fieldPath(d.path) || where,
    message: d.message.replace(/"/g, ''),
  }));
  if (error.details.some((d) => d.type === UUID_ERROR)) {
    throw new AppError('INVALID_UUID', 'An identifier is not a valid UUID.', details);
  }
  throw new AppError('VALIDATION_ERROR', `The request ${where} is invalid.`, details);
}

const errorEnvelopeRef = { $ref: '#/components/schemas/ErrorEnvelope' };

function documentResponses(spec: RouteSpec, success: number) {
  const codes = new Set<ErrorCode>(spec.errors ?? []);
  // Every route validates: a route without a query or body schema refuses stray fields.
  codes.add('VALIDATION_ERROR');
  if (spec.access !== 'public') codes.add('UNAUTHORIZED').add('TOKEN_EXPIRED');
  if (Array.isArray(spec.access)) codes.add('FORBIDDEN');
  if (spec.body) codes.add('PAYLOAD_TOO_LARGE').add('UNSUPPORTED_MEDIA_TYPE');
  codes.add('INTERNAL_ERROR');
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of codes) byStatus.set(statusOf(code), [...(byStatus.get(statusOf(code)) ?? []), code]);
  const data = spec.response ? toSchema(spec.response).swagger : {};
  const successSchema = {
    type: 'object',
    properties: {
      success: { type: 'boolean', enum: [true] },
      data: spec.paginated ? { type: 'array', items: data } : data,
      ...(spec.paginated ? { pagination: { $ref: '#/components/schemas/Pagination' } } : {}),
    },
    required: ['success', 'data'],
  };
  const responses: Record<string, object> = {
    [success]: { description: 'Success', content: { 'application/json': { schema: successSchema } } },
  };
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[status] = {
      description: list.join(', '),
      content: { 'application/json': { schema: errorEnvelopeRef } },
    };
  }
  return responses;
}

function documentParameters(schema: Schema | undefined, location: 'path' | 'query' | 'header') {
  if (!schema) return [];
  const swagger = toSchema(schema).swagger as { properties?: Record<string, object>; required?: string[] };
  return Object.entries(swagger.properties ?? {}).map(([name, s]) => ({
    name,
    in: location,
    required: location === 'path' || (swagger.required ?? []).includes(name),
    schema: s,
  }));
}

/**
 * A module's router. Each route declares its access rule and joi schemas once; the same
 * declaration enforces them and writes the route into the module's OpenAPI fragment.
 */
export function createApiRouter(module: string, tag: string): ApiRouter {
  const router = new Router();
  const paths: ApiRouter['paths'] = {};
  const scope: Middleware = (ctx, next) => {
    const store = requestScope.getStore();
    if (store) store.module = module;
    ctx.state.module = module;
    return next();
  };

  const api: ApiRouter = {
    module,
    tag,
    router,
    paths,
    route(method, path, spec, handler) {
      const query = spec.paginated ? (spec.query ?? Joi.object()).keys(pagination) : (spec.query ?? NOTHING);
      const success = spec.status ?? (method === 'post' ? 201 : 200);
      const run: Middleware = async (ctx) => {
        const params = check(spec.params, ctx.params, 'path');
        const q = check(query, ctx.query, 'query') as Record<string, unknown>;
        const body = check(spec.body ?? NOTHING, ctx.request.body, 'body');
        const headers = spec.headers ? check(spec.headers.unknown(true), ctx.headers, 'headers') : {};
        const result = await handler({
          params,
          headers,
          query: q,
          body,
          page: spec.paginated ? toPage(q as { page: number; per_page: number }) : toPage({ page: 1, per_page: 20 }),
          principal: ctx.state.principal as Principal,
          ctx,
        } as RouteInput<never, never, never>);
        if (ctx.body !== undefined) return;
        ctx.status = success;
        if (spec.paginated) {
          const { items, total } = result as Paged<unknown>;
          const p = q as { page: number; per_page: number };
          ctx.body = {
            success: true,
            data: items,
            pagination: { page: p.page, per_page: p.per_page, total, total_pages: Math.ceil(total / p.per_page) },
          };
        } else {
          ctx.body = { success: true, data: result ?? null };
        }
      };
      const chain = [scope, guard(spec.access), ...(spec.before ?? []), run].filter(Boolean) as Middleware[];
      router[method](path, ...chain);

      const openPath = path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      paths[openPath] ??= {};
      paths[openPath][method] = {
        tags: [tag],
        summary: spec.summary,
        ...(spec.description ? { description: spec.description } : {}),
        operationId: `${method}${openPath.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)/g, (_, c: string) => c.toUpperCase())}`,
        security: spec.access === 'public' ? [] : [{ bearerAuth: [] }],
        parameters: [
          ...documentParameters(spec.params, 'path'),
          ...documentParameters(query, 'query'),
          ...documentParameters(spec.headers, 'header'),
        ],
        ...(spec.body
          ? {
              requestBody: {
                // Optional when an absent body is valid (logout's refresh_token, for one).
                required: spec.body.validate({}).error !== undefined,
                content: { 'application/json': { schema: toSchema(spec.body).swagger } },
              },
            }
          : {}),
        responses: documentResponses(spec, success),
      };
      return api;
    },
  };
  return api;
}
