import { createReadStream } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { koaSwagger } from 'koa2-swagger-ui';

const swaggerDist = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const SWAGGER_ASSETS = new Map<string, [string, string]>(
  Object.entries({
    'swagger-ui.min.css': ['swagger-ui.css', 'text/css'],
    'swagger-ui-bundle.js': ['swagger-ui-bundle.js', 'application/javascript'],
    'swagger-ui-standalone-preset.js': ['swagger-ui-standalone-preset.js', 'application/javascript'],
  }),
);

/** `/openapi.json` and the Swagger UI at `/docs`, with its assets served from here (no CDN). */
export function docsRouter(document: () => object): Router {
  const router = new Router();
  router.get('/openapi.json', (ctx) => {
    ctx.body = document();
  });
  router.get('/docs/assets/local/:file', async (ctx) => {
    // A Map, not an object: `constructor` or `__proto__` must not name an asset.
    const asset = SWAGGER_ASSETS.get(ctx.params.file);
    if (!asset) return;
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
