import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, loadAppConfig } from '../../src/app.js';
import type { Clock, ManualClock } from '../../src/kernel/clock.js';
import { type DbKind, freshDatabase, request, TEST_ADMIN, type TestApp } from './app.js';
import { freePort, type Server, spawnServer, waitForHealth } from './process.js';
import { SLICES, type Slice } from './split.js';

/**
 * The scenario suite's second shape: the four modules as four processes on free ports, each
 * `node --import tsx src/main.ts` with MODULES=<module>, on one fresh database (SQLite: one
 * directory, a file per module; PostgreSQL: one database, a schema per module). Tests see the
 * same TestApp as in one process:
 * - on PostgreSQL the orchestrator runs as two instances (five processes), as a hot slice is
 *   scaled: its sagas, recovery and leases are shared through its database;
 * - `url` is an edge in this process that sends each request to the slice that owns its path
 *   (read from the slices' own OpenAPI documents), taking the orchestrator's instances in turn,
 *   as nginx does in production; /openapi.json is the merged document;
 * - `kernel` is a kernel with every module on the same databases that serves nothing and runs no
 *   background work: the test's window for reading rows, running a job's tick (as one more
 *   instance of that slice would) and calling ports;
 * - a manual clock passed in moves the slices' time too: each advance is written to the file
 *   their CLOCK_OFFSET_FILE names, before the test's next request.
 */
export async function startSplitApp(
  kind: DbKind,
  env: Record<string, string>,
  options: { clock?: Clock },
): Promise<TestApp> {
  // A file whose tests each start their own app would boot dozens of processes at once on two
  // cores: one start at a time.
  const previous = booting;
  let done = () => {};
  booting = new Promise<void>((resolve) => {
    done = resolve;
  });
  await previous;
  try {
    return await boot(kind, env, options);
  } finally {
    done();
  }
}

let booting: Promise<void> = Promise.resolve();

async function boot(kind: DbKind, env: Record<string, string>, options: { clock?: Clock }): Promise<TestApp> {
  const db = await freshDatabase(kind);
  const scratch = mkdtempSync(join(tmpdir(), 'tr-shape-'));
  const servers: Server[] = [];
  const instances: { slice: Slice; url: string; env: Record<string, string> }[] = [];
  let edge: Edge | undefined;
  let observer: Awaited<ReturnType<typeof createApp>> | undefined;
  const close = async () => {
    await edge?.close();
    await observer?.stop();
    for (const s of servers) s.cleanup();
    await Promise.all(servers.map((s) => s.exited));
    if (!process.env.TEST_KEEP_LOGS) rmSync(scratch, { recursive: true, force: true });
    await db.drop();
  };
  try {
    const ports = Object.fromEntries(
      await Promise.all(SLICES.map(async (m) => [m, await freePort()] as const)),
    ) as Record<Slice, number>;
    const url = (m: Slice) => `http://127.0.0.1:${ports[m]}`;
    const clockFile = options.clock ? mirrorClock(options.clock, join(scratch, 'clock-offset')) : undefined;
    const shared: Record<string, string> = {
      NODE_ENV: 'test',
      // Written to each slice's log file, and shown when the slices do not start.
      LOG_LEVEL: 'warn',
      // Four slices and this process's window on them, two files at a time, beside other tests: a
      // PostgreSQL server's 100 connections go round.
      DATABASE_POOL_MAX: '4',
      ADMIN_EMAIL: TEST_ADMIN.email,
      ADMIN_PASSWORD: TEST_ADMIN.password,
      ...db.env,
      ...env,
      ...(clockFile ? { CLOCK_OFFSET_FILE: clockFile } : {}),
    };
    for (const m of SLICES) {
      shared[`${m.toUpperCase()}_PORT`] = String(ports[m]);
      shared[`${m.toUpperCase()}_URL`] = url(m);
    }
    const dataDir = db.env.DATA_DIR;
    for (const m of SLICES) instances.push({ slice: m, url: url(m), env: { MODULES: m } });
    if (kind === 'postgres') {
      const port = await freePort();
      const env = { MODULES: 'orchestrator', ORCHESTRATOR_PORT: String(port) };
      instances.push({ slice: 'orchestrator', url: `http://127.0.0.1:${port}`, env });
    }
    instances.forEach((p, i) => {
      const logFile = join(scratch, `${p.slice}-${i}.log`);
      servers.push(spawnServer({ ...shared, ...p.env }, { dataDir, logFile }));
    });
    await Promise.all(servers.map((s, i) => waitForHealth(s, instances[i].url, 120_000)));

    const config = loadAppConfig({
      ...shared,
      MODULES: 'all',
      LOG_LEVEL: 'silent',
      DATABASE_POOL_MAX: '3',
    });
    // On the slices' clock (the file), not the test's: a job this window runs (a sweep) judges a
    // hold's expiry at the very millisecond the slices do.
    observer = await createApp(config, { background: false });
    const kernel = observer;
    const urls = (m: Slice) => instances.filter((p) => p.slice === m).map((p) => p.url);
    edge = await startEdge(await routeTable(urls), () => kernel.openapi());
    const base = `http://127.0.0.1:${edge.port}`;
    const running = { server: edge.server, port: edge.port, close };
    return {
      kind,
      shape: 'split',
      url: base,
      kernel,
      running,
      env: shared,
      sliceUrls: instances.map((p) => p.url),
      request: (method, path, opts) => request(base, method, path, opts),
      close,
    };
  } catch (err) {
    const logs = servers.map((s, i) => `--- ${instances[i]?.slice}\n${s.output()}`).join('\n');
    await close().catch(() => undefined);
    throw new Error(`the four slices did not start: ${err instanceof Error ? err.message : err}\n${logs}`);
  }
}

/** Writes the clock's offset from real time to `file` now and after every advance; returns the file. */
function mirrorClock(clock: Clock, file: string): string {
  const write = () => writeFileSync(file, String(clock.now() - Date.now()));
  const manual = clock as Partial<ManualClock>;
  if (typeof manual.advance === 'function') {
    const advance = manual.advance.bind(clock);
    manual.advance = (ms: number) => {
      advance(ms);
      write();
    };
  }
  write();
  return file;
}

interface Route {
  pattern: RegExp;
  /** The next instance to send to. */
  target: () => string;
}

/** The instances of a slice, taken in turn. */
function turns(urls: string[]): () => string {
  let next = 0;
  return () => urls[next++ % urls.length];
}

/** Each slice's own paths, from its /openapi.json, as patterns (`{id}` is one path segment). */
async function routeTable(urls: (m: Slice) => string[]): Promise<Route[]> {
  const routes: Route[] = [];
  const target = Object.fromEntries(SLICES.map((m) => [m, turns(urls(m))])) as Record<Slice, () => string>;
  for (const m of SLICES) {
    const doc = (await (await fetch(`${urls(m)[0]}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    for (const path of Object.keys(doc.paths)) {
      const source = path
        .split(/\{[^}]+\}/)
        .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('[^/]+');
      routes.push({ pattern: new RegExp(`^${source}/?$`), target: target[m] });
    }
  }
  // A port's HTTP adapter pointed at the app's URL reaches the slice that serves that port.
  for (const m of SLICES) routes.push({ pattern: new RegExp(`^/internal/${m}/`), target: target[m] });
  // Health, metrics and docs: a slice that calls every other one answers for them all.
  routes.push({ pattern: /^\/(health|metrics|docs)(\/|$)/, target: target.orchestrator });
  return routes;
}

interface Edge {
  server: ReturnType<typeof createServer>;
  port: number;
  close(): Promise<void>;
}

/**
 * A reverse proxy on a free port: each request goes, unchanged, to the slice whose path it is
 * (a path no slice has goes to the user slice, for its 404); /openapi.json is the merged document.
 * A slice that does not answer gives 503 in the envelope, as nginx's configuration does.
 */
async function startEdge(routes: Route[], openapi: () => object): Promise<Edge> {
  // An idle connection is closed here before a slice's keep-alive timeout (5 s) closes it there,
  // so that a request is never sent on a connection the slice is closing.
  const agent = new Agent({ keepAlive: true, maxSockets: 256, timeout: 4000 });
  const fallback = routes.find((r) => r.pattern.test('/api/auth/login'))?.target as () => string;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/openapi.json' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(openapi()));
      return;
    }
    const target = new URL((routes.find((r) => r.pattern.test(path))?.target ?? fallback)());
    const upstream = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(res);
      },
    );
    upstream.on('error', (err) => {
      if (process.env.TEST_EDGE_DEBUG) console.error('edge:', req.method, req.url, err);
      if (res.headersSent) return void res.destroy();
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          success: false,
          error_code: 'SERVICE_UNAVAILABLE',
          message: 'The module serving this route is unavailable; try again shortly.',
        }),
      );
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    server,
    port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
