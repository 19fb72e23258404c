import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { koaSwagger } from 'koa2-swagger-ui';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { ApiRouter } from './routing.js';

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const labelNames = ['module', 'method', 'route', 'status'] as const;
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests',
    labelNames,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency',
    labelNames,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  /** Counts and times every request by module and route pattern (never the raw path). */
  const middleware: Middleware = async (ctx, next) => {
    const end = latency.startTimer();
    try {
      await next();
    } finally {
      const labels = {
        module: (ctx.state.module as string | undefined) ?? 'kernel',
        method: ctx.method,
        // A request refused before routing (405, 413, 415) has no route: its raw path would be a label per URL.
        route: (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched',
        status: String(ctx.status),
      };
      requests.inc(labels);
      end(labels);
    }
  };
  return { registry, middleware };
}

export interface OpenApiInfo {
  title: string;
  version: string;
  description: string;
}

/** One OpenAPI 3 document from the fragments of the loaded modules' public routers. */
export function buildOpenApi(info: OpenApiInfo, routers: ApiRouter[]) {
  const paths: Record<string, Record<string, object>> = {};
  for (const r of routers) for (const [p, ops] of Object.entries(r.paths)) paths[p] = { ...paths[p], ...ops };
  return {
    openapi: '3.0.3',
    info,
    servers: [{ url: '/' }],
    tags: [...new Map(routers.map((r) => [r.tag, { name: r.tag, description: `module ${r.module}` }])).values()],
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: {
        ErrorEnvelope: {
          type: 'object',
          required: ['success', 'error_code', 'message'],
          properties: {
            success: { type: 'boolean', enum: [false] },
            error_code: { type: 'string' },
            message: { type: 'string' },
            details: {
              type: 'array',
              items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
            },
          },
        },
        Pagination: {
          type: 'object',
          properties: {
            page: { type: 'integer' },
            per_page: { type: 'integer' },
            total: { type: 'integer' },
            total_pages: { type: 'integer' },
          },
        },
      },
    },
  };
}

const swaggerDist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const SWAGGER_ASSETS: Record<string, [string, string]> = {
  'swagger-ui.min.css': ['swagger-ui.css', 'text/css'],
  'swagger-ui-bundle.js': ['swagger-ui-bundle.js', 'application/javascript'],
  'swagger-ui-standalone-preset.js': ['swagger-ui-standalone-preset.js', 'application/javascript'],
};

/** `/openapi.json` and the Swagger UI at `/docs`, with its assets served from here (no CDN). */
export function docsRouter(document: () => object): Router {
  const router = new Router();
  router.get('/openapi.json', (ctx) => {
    ctx.body = document();
  });
  router.get('/docs/assets/local/:file', async (ctx) => {
    const asset = SWAGGER_ASSETS[ctx.params.file];
    if (!asset) return;
    const { createReadStream } = await import('node:fs');
    ctx.type = asset[1];
    ctx.set('Cache-Control', 'public, max-age=86400');
    ctx.body = createReadStream(join(swaggerDist, asset[0]));
  });
  const ui = koaSwagger({
    routePrefix: '/docs',
    title: 'TicketRemaster API',
    swaggerCdnUrl: '/docs/assets',
    swaggerVersion: 'local',
    swaggerOptions: { url: '/openapi.json', persistAuthorization: true, displayRequestDuration: true },
  });
  router.get('/docs', ui as Middleware);
  return router;
}
