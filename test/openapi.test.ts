import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import test from 'ava';
import { DATABASES, sharedApp, startApp } from './helpers/app.js';
import { newUser } from './helpers/users.js';

interface Operation {
  security?: object[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: object }> };
  responses: Record<string, object>;
  parameters?: { name: string; in: string }[];
}
type Document = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string; scheme: string }> };
};

/** The public routes every module registers, read from its *.routes.ts sources. */
function routesInSource(): { method: string; path: string; hasBody: boolean }[] {
  const modules = join(process.cwd(), 'src/modules');
  const files = readdirSync(modules, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.routes.ts'));
  const routes = [];
  for (const file of files) {
    const source = readFileSync(join(modules, file), 'utf8');
    for (const call of source.split(/api\.route\(/).slice(1)) {
      const match = /^\s*'(get|post|patch|put|delete)',\s*'([^']+)'/.exec(call);
      if (!match) continue;
      const spec = call.slice(0, call.indexOf('async') > 0 ? call.indexOf('async') : undefined);
      routes.push({
        method: match[1],
        path: match[2].replace(/:([A-Za-z0-9_]+)/g, '{$1}'),
        hasBody: /\bbody:/.test(spec),
      });
    }
  }
  return routes;
}

const METHODS = ['get', 'post', 'patch', 'put', 'delete'];

for (const kind of DATABASES) {
  let doc: Document;
  const app = sharedApp(kind, {
    ready: async (a) => {
      doc = (await a.request('GET', '/openapi.json')).body;
    },
  });
  const name = (s: string) => `[${kind}] ${s}`;

  test(name('GET /openapi.json is a valid OpenAPI 3 document'), async (t) => {
    t.regex(doc.openapi, /^3\./);
    await t.notThrowsAsync(SwaggerParser.validate(structuredClone(doc) as never));
  });

  test(name('it lists every public route of every module with its method, and no /internal path'), (t) => {
    const routes = routesInSource();
    t.true(routes.length >= 15, `found ${routes.length} routes in the sources`);
    for (const r of routes) t.truthy(doc.paths[r.path]?.[r.method], `${r.method.toUpperCase()} ${r.path}`);
    for (const [path, ops] of Object.entries(doc.paths)) {
      t.false(path.startsWith('/internal'), path);
      for (const method of Object.keys(ops).filter((m) => METHODS.includes(m))) {
        t.true(
          routes.some((r) => r.path === path && r.method === method),
          `${method.toUpperCase()} ${path} is a route of the sources`,
        );
      }
    }
  });

  test(name('a bearerAuth scheme protects every non-public route'), (t) => {
    t.like(doc.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer' });
    const publicRoutes = new Set([
      'post /api/auth/register',
      'post /api/auth/login',
      'post /api/webhooks/stripe',
      'get /api/events',
      'get /api/events/{event_id}',
    ]);
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const isPublic = publicRoutes.has(`${method} ${path}`);
        t.deepEqual(op.security, isPublic ? [] : [{ bearerAuth: [] }], `${method} ${path}`);
        if (!isPublic) t.truthy(op.responses['401'], `${method} ${path} documents 401`);
      }
    }
  });

  test(name('every route that takes a body documents its JSON schema; only logout’s is optional'), (t) => {
    for (const r of routesInSource().filter((x) => x.hasBody)) {
      const body = doc.paths[r.path][r.method].requestBody;
      t.truthy(body?.content?.['application/json']?.schema, `${r.method} ${r.path}`);
      t.is(body?.required, r.path !== '/api/auth/logout', `${r.method} ${r.path} required`);
    }
    const patch = doc.paths['/api/admin/users/{user_id}'].patch;
    t.deepEqual(
      patch.parameters?.map((p) => [p.name, p.in]),
      [['user_id', 'path']],
    );
    const list = doc.paths['/api/admin/users'].get;
    t.truthy(patch.responses['404'], 'PATCH documents USER_NOT_FOUND');
    t.truthy(list.responses['200']);
    t.true(['email', 'page', 'per_page'].every((q) => list.parameters?.some((p) => p.name === q && p.in === 'query')));
  });

  test(name('the documented amounts are in credits, as enforced'), (t) => {
    const grant = doc.paths['/api/admin/credits'].post.requestBody?.content?.['application/json']?.schema as {
      properties: Record<string, { maximum?: number; multipleOf?: number }>;
    };
    t.like(grant.properties.amount, { maximum: 1_000_000, multipleOf: 0.01 });
  });

  test(name('GET /docs serves the Swagger UI'), async (t) => {
    const res = await fetch(`${app.url}/docs`);
    t.is(res.status, 200);
    t.regex(res.headers.get('content-type') ?? '', /^text\/html/);
    const html = await res.text();
    t.true(html.includes('/openapi.json'));
    const asset = await fetch(`${app.url}/docs/assets/local/swagger-ui-bundle.js`);
    t.is(asset.status, 200);
    await asset.arrayBuffer();
  });

  test(name('GET /health says healthy, names the modules and the connected database'), async (t) => {
    const res = await app.request('GET', '/health');
    t.is(res.status, 200);
    t.like(res.body, { status: 'healthy', checks: { database: 'connected' } });
    t.true(res.body.modules.includes('user'));
    t.is(typeof res.body.service, 'string');
    t.regex(res.body.timestamp, /Z$/);
  });

  test(name('GET /metrics counts requests by module and route pattern, never the raw path'), async (t) => {
    const u = await newUser(app);
    await app.request('GET', '/api/users/me', { token: u.token });
    await app.request('PATCH', `/api/admin/users/${u.userId}`, { token: u.token, body: { role: 'admin' } });
    await app.request('DELETE', `/api/admin/users/${u.userId}`, { token: u.token });
    const res = await fetch(`${app.url}/metrics`);
    t.is(res.status, 200);
    t.regex(res.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await res.text();
    t.regex(text, /^http_requests_total\{module="user",method="GET",route="\/api\/users\/me",status="200"\} \d+$/m);
    t.regex(text, /^http_requests_total\{[^}]*route="\/api\/admin\/users\/:user_id",status="403"\} \d+$/m);
    t.regex(text, /^http_request_duration_seconds_bucket\{[^}]*module="user"/m);
    t.regex(text, /^process_cpu_user_seconds_total/m);
    t.false(text.includes(u.userId), 'no label carries an id');
  });
}

test('browser-facing answers carry security headers and CORS; calls between slices do not', async (t) => {
  const app = await startApp('sqlite');
  t.teardown(() => app.close());
  const pub = await app.request('GET', '/api/events', { headers: { origin: 'https://fans.example' } });
  t.is(pub.headers.get('x-content-type-options'), 'nosniff');
  t.is(pub.headers.get('access-control-allow-origin'), '*');
  const internal = await app.request('POST', '/internal/event/getEvent', {
    headers: { 'x-service-token': app.kernel.config.serviceToken, origin: 'https://fans.example' },
    body: { eventId: '00000000-0000-4000-8000-000000000000' },
  });
  t.is(internal.body.error_code, 'EVENT_NOT_FOUND');
  t.is(internal.headers.get('x-content-type-options'), null);
  t.is(internal.headers.get('access-control-allow-origin'), null);
});
