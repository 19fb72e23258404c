import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import { authContext, createTokenService, type SessionCheck, serviceGuard, type TokenService } from './auth.js';
import type { Config } from './config.js';
import { AppError } from './errors.js';
import { createLogger, type Logger } from './logger.js';
import { correlationId, errors, jsonBody, requestLog, security } from './middleware.js';
import type { ModuleDefinition, ModuleInstance } from './module.js';
import { buildOpenApi, createMetrics, docsRouter } from './observability.js';
import { type Database, openDatabase } from './persistence.js';
import { createHttpPort, createLocalPort, createPortRouter, type PortImpl, type Ports } from './ports.js';
import { isoDate } from './schemas.js';

export interface KernelOptions {
  config: Config;
  /** Every module the system has; `config.modules` picks which of them this process loads. */
  modules: ModuleDefinition[];
  /** Made with createLogger, so that every line carries the correlation id and module. */
  log?: Logger;
  /** The session check, from whichever module's port owns sessions (that module counts as required). */
  sessions?: { port: string; check: (ports: Ports) => SessionCheck };
  info?: { title: string; version: string; description: string };
}

export interface Kernel {
  app: Koa;
  config: Config;
  log: Logger;
  ports: Ports;
  tokens: TokenService;
  loaded: ModuleDefinition[];
  databases: Map<string, Database>;
  /** The lines the modules' afterStart returned, for the process's start banner. */
  startNotes: string[];
  openapi(): object;
  /** The port this process listens on: PORT for several modules, the module's own port alone. */
  listenPort(): number;
  stop(): Promise<void>;
}

export function selectModules(all: ModuleDefinition[], selection: string): ModuleDefinition[] {
  if (selection === 'all') return all;
  const names = selection.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!all.some((m) => m.name === name)) {
      throw new Error(`Unknown module "${name}" in MODULES; known modules: ${all.map((m) => m.name).join(', ')}`);
    }
  }
  return all.filter((m) => names.includes(m.name));
}

export async function createKernel(options: KernelOptions): Promise<Kernel> {
  const { config, modules } = options;
  const log = options.log ?? createLogger(config.logLevel);
  const loaded = selectModules(modules, config.modules);
  const tokens = createTokenService(config);
  const databases = new Map<string, Database>();
  const instances = new Map<string, ModuleInstance>();
  const remotes = new Map<string, unknown>();

  const locals = new Map<string, Record<string, (args: unknown) => Promise<unknown>>>();
  const ports: Ports = {
    get<T>(name: string): T {
      const local = locals.get(name);
      if (local) return local as T;
      const def = modules.find((m) => m.name === name);
      if (!def?.port) throw new Error(`No module offers a port named "${name}"`);
      if (loaded.includes(def)) throw new Error(`Port "${name}" was used before its module started`);
      if (!remotes.has(name)) {
        remotes.set(name, createHttpPort(def.port, config.moduleUrls[name] ?? '', config.serviceToken));
      }
      return remotes.get(name) as T;
    },
  };

  const metrics = createMetrics();
  try {
    for (const def of loaded) {
      const db = await openDatabase({ module: def.name, entities: def.entities, migrations: def.migrations, config });
      databases.set(def.name, db);
      const instance = await def.start({
        config,
        db,
        log: log.child({ module: def.name }),
        ports,
        metrics: metrics.registry,
      });
      instances.set(def.name, instance);
      if (def.port && instance.port) locals.set(def.name, createLocalPort(def.port, instance.port as PortImpl));
    }
  } catch (err) {
    await Promise.allSettled([...databases.values()].map((db) => db.close()));
    throw err;
  }

  const apiRouters = [...instances.values()].flatMap((i) => i.routers);
  const info = options.info ?? { title: 'TicketRemaster API', version: '0.1.0', description: '' };
  const openapi = () => buildOpenApi(info, apiRouters);
  const sessionCheck = options.sessions?.check(ports);

  const root = new Router();
  for (const r of apiRouters) root.use(r.router.routes());
  const internal = new Router();
  internal.use('/internal', serviceGuard(config.serviceToken));
  for (const def of loaded) {
    const local = locals.get(def.name);
    if (def.port && local) internal.use(createPortRouter(def.port, local).routes());
  }
  const ops = docsRouter(openapi);
  ops.get('/health', async (ctx) => {
    const checks: Record<string, string> = {};
    const dbOk = await Promise.all([...databases.values()].map((db) => db.ping()));
    checks.database = dbOk.every(Boolean) ? 'connected' : 'disconnected';
    const required = [...loaded.flatMap((m) => m.requires ?? []), ...(options.sessions ? [options.sessions.port] : [])];
    const needed = new Set(required.filter((n) => !instances.has(n)));
    await Promise.all(
      [...needed].map(async (name) => {
        const ok = await fetch(`${config.moduleUrls[name]}/health`, { signal: AbortSignal.timeout(1000) })
          .then((r) => r.ok)
          .catch(() => false);
        checks[name] = ok ? 'reachable' : 'unreachable';
      }),
    );
    const healthy = Object.values(checks).every((v) => v === 'connected' || v === 'reachable');
    ctx.status = healthy ? 200 : 503;
    ctx.body = {
      status: healthy ? 'healthy' : 'unhealthy',
      service: loaded.length === modules.length ? 'ticketremaster' : loaded.map((m) => m.name).join(','),
      modules: loaded.map((m) => m.name),
      timestamp: isoDate(new Date()),
      checks,
    };
  });
  ops.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });

  const notAllowed = {
    throw: true,
    methodNotAllowed: () => new AppError('METHOD_NOT_ALLOWED', 'This method is not allowed on this route.'),
    notImplemented: () => new AppError('METHOD_NOT_ALLOWED', 'This method is not allowed on this route.'),
  };

  const app = new Koa({ proxy: config.trustProxy });
  app.silent = true;
  // The one middleware order of every process.
  // Router middleware widen koa's context type, hence `any` here.
  const stack: Middleware<Koa.DefaultState, any>[] = [
    correlationId(),
    requestLog(log),
    metrics.middleware,
    errors(log),
    jsonBody(),
    security(config),
    authContext(tokens, () => sessionCheck),
    root.routes(),
    root.allowedMethods(notAllowed),
    internal.routes(),
    ops.routes(),
    ops.allowedMethods(notAllowed),
  ];
  for (const m of stack) app.use(m);

  const timers: NodeJS.Timeout[] = [];
  const running = new Set<Promise<unknown>>();
  for (const [name, instance] of instances) {
    for (const job of instance.jobs ?? []) {
      let busy = false;
      const timer = setInterval(() => {
        if (busy) return;
        busy = true;
        const p = job
          .run()
          .catch((err) => log.error({ err, module: name, job: job.name }, 'background job failed'))
          .finally(() => {
            busy = false;
            running.delete(p);
          });
        running.add(p);
      }, job.intervalMs);
      timer.unref();
      timers.push(timer);
    }
  }
  const startNotes: string[] = [];
  for (const instance of instances.values()) {
    const notes = await instance.afterStart?.();
    if (Array.isArray(notes)) startNotes.push(...notes);
  }

  return {
    app,
    config,
    log,
    ports,
    tokens,
    loaded,
    databases,
    startNotes,
    openapi,
    listenPort: () =>
      config.modules !== 'all' && loaded.length === 1
        ? (config.modulePorts[loaded[0].name] ?? loaded[0].defaultPort)
        : config.port,
    async stop() {
      for (const t of timers) clearInterval(t);
      await Promise.allSettled(running);
      for (const instance of instances.values()) await instance.stop?.();
      await Promise.allSettled([...databases.values()].map((db) => db.close()));
    },
  };
}
