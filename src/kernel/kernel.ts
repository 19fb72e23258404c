import Router from '@koa/router';
import Koa, { type Middleware } from 'koa';
import { authContext, createTokenService, internalGuard, type SessionCheck, type TokenService } from './auth.js';
import { type Clock, fileClock, systemClock } from './clock.js';
import type { Config } from './config.js';
import { docsRouter } from './docs.js';
import { AppError } from './errors.js';
import { createFaults } from './faults.js';
import { healthRouter } from './health.js';
import { createScheduler, type Scheduler } from './jobs.js';
import { selectModules, startModules } from './loader.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics } from './metrics.js';
import { correlationId, errors, jsonBody, requestLog, security } from './middleware.js';
import type { ModuleDefinition } from './module.js';
import { buildOpenApi } from './openapi.js';
import type { Database } from './persistence.js';
import { createPortRouter } from './ports.js';
import { createPortRegistry, type PortName, type PortRegistry } from './registry.js';
import { createSessionView, type SessionChanges } from './sessions.js';

export interface KernelOptions {
  config: Config;
  /** Every module the system has; `config.modules` picks which of them this process loads. */
  modules: ModuleDefinition[];
  /** Made with createLogger, so that every line carries the correlation id and module. */
  log?: Logger;
  /** The one clock of every TTL; tests pass a manual one. */
  clock?: Clock;
  /**
   * The session check, from whichever module's port owns sessions (that module counts as
   * required). With `changes`, a process without that module keeps a view of recent revocations
   * and role changes instead of calling it per request (sessions.ts).
   */
  sessions?: {
    port: PortName;
    check: (ports: PortRegistry) => SessionCheck;
    changes?: (ports: PortRegistry) => (since: string | null) => Promise<SessionChanges>;
  };
  info?: { title: string; version: string; description: string };
  /**
   * false: no background work (jobs, the session view) and no afterStart: a kernel that only
   * reads and writes the databases of running slices, as a test's or a tool's window on them.
   */
  background?: boolean;
}

export interface Kernel {
  app: Koa;
  config: Config;
  log: Logger;
  clock: Clock;
  ports: PortRegistry;
  tokens: TokenService;
  jobs: Scheduler;
  loaded: ModuleDefinition[];
  databases: Map<string, Database>;
  /** The lines the modules' afterStart returned, for the process's start banner. */
  startNotes: string[];
  openapi(): object;
  /** The port this process listens on: PORT for several modules, the module's own port alone. */
  listenPort(): number;
  stop(): Promise<void>;
}

export async function createKernel(options: KernelOptions): Promise<Kernel> {
  const { config, modules } = options;
  const log = options.log ?? createLogger(config.logLevel);
  const clock = options.clock ?? (config.clockOffsetFile ? fileClock(config.clockOffsetFile) : systemClock);
  const loaded = selectModules(modules, config.modules);
  const tokens = createTokenService(config, clock);
  const faults = createFaults(config.faultInjection, log);
  const ports = createPortRegistry({ all: modules, loaded, config, faults });
  const jobs = createScheduler({ log, clock, leaseMs: config.jobLeaseMs });
  const metrics = createMetrics();

  for (const def of loaded) ports.checkRequires(def.name, def.requires ?? []);
  if (options.sessions) ports.checkRequires('kernel', [options.sessions.port]);
  const { databases, instances } = await startModules(loaded, { config, log, clock, ports, jobs, faults, metrics });

  const apiRouters = [...instances.values()].flatMap((i) => i.routers);
  const info = options.info ?? { title: 'TicketRemaster API', version: '0.1.0', description: '' };
  const openapi = () => buildOpenApi(info, apiRouters);
  const sessions = options.sessions;
  const direct = sessions?.check(ports);
  const sessionView =
    sessions?.changes && direct && !instances.has(sessions.port)
      ? createSessionView({
          changes: sessions.changes(ports),
          fallback: direct,
          log: log.child({ module: 'kernel' }),
          // Older changes cannot concern an access token that is still valid.
          keepMs: (config.accessTokenTtlSeconds + 60) * 1000,
        })
      : undefined;
  const sessionCheck = sessionView?.check ?? direct;

  const root = new Router();
  for (const r of apiRouters) root.use(r.router.routes());
  const internal = new Router();
  // Again on the internal routes themselves, whatever path variant reached them.
  internal.use(internalGuard(config.serviceToken));
  for (const def of loaded) {
    const served = ports.served(def.name);
    if (def.port && served) internal.use(createPortRouter(def.port, served).routes());
  }
  const required = [...loaded.flatMap((m) => m.requires ?? []), ...(options.sessions ? [options.sessions.port] : [])];
  const peers = [...new Set(required)].filter((name) => !instances.has(name));
  const ops = docsRouter(openapi);
  const health = healthRouter({
    service: loaded.length === modules.length ? 'ticketremaster' : loaded.map((m) => m.name).join(','),
    modules: loaded.map((m) => m.name),
    databases: [...databases.values()],
    peers: Object.fromEntries(peers.map((name) => [name, config.moduleUrls[name]])),
    clock: () => clock.now(),
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
  // The one middleware order of every process. Every answer, a refused body's included, carries
  // the security and CORS headers; nothing under /internal is parsed or routed without the credential.
  // Router middleware widen koa's context type, hence `any` here.
  const stack: Middleware<Koa.DefaultState, any>[] = [
    correlationId(),
    requestLog(log),
    metrics.middleware,
    errors(log),
    security(config),
    internalGuard(config.serviceToken),
    jsonBody(),
    authContext(tokens, () => sessionCheck),
    root.routes(),
    root.allowedMethods(notAllowed),
    internal.routes(),
    internal.allowedMethods(notAllowed),
    health.routes(),
    health.allowedMethods(notAllowed),
    ops.routes(),
    ops.allowedMethods(notAllowed),
  ];
  for (const m of stack) app.use(m);

  const startNotes: string[] = [];
  if (options.background !== false) {
    jobs.start();
    sessionView?.start();
    for (const instance of instances.values()) {
      const notes = await instance.afterStart?.();
      if (Array.isArray(notes)) startNotes.push(...notes);
    }
  }

  return {
    app,
    config,
    log,
    clock,
    ports,
    tokens,
    jobs,
    loaded,
    databases,
    startNotes,
    openapi,
    listenPort: () =>
      config.modules !== 'all' && loaded.length === 1
        ? (config.modulePorts[loaded[0].name] ?? loaded[0].defaultPort)
        : config.port,
    async stop() {
      await sessionView?.stop();
      await jobs.stop();
      for (const instance of instances.values()) await instance.stop?.();
      await Promise.allSettled([...databases.values()].map((db) => db.close()));
    },
  };
}
