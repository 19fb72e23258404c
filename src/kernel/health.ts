import Router from '@koa/router';
import type { Database } from './persistence.js';
import { isoDate } from './schemas.js';

export interface HealthOptions {
  service: string;
  modules: string[];
  databases: Database[];
  /** The modules this process calls but does not load, with their base URLs. */
  peers: Record<string, string>;
  clock: () => number;
}

const PEER_TIMEOUT_MS = 1000;
/**
 * A database that has not answered `select 1` by then is reported disconnected: a server that
 * drops packets would otherwise hold /health until the pool gives up on its connection attempt,
 * past any health checker's own deadline (the Dockerfile's is 2.5 s).
 */
const DATABASE_TIMEOUT_MS = 1500;

/** The database's ping, or false once `ms` have passed without an answer. */
async function pingWithin(db: Database, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([db.ping(), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `/health` checks this process's databases and asks every peer it calls for `/health/live`,
 * which answers from the process alone: a cycle of slices asking each other cannot recurse.
 */
export function healthRouter(options: HealthOptions): Router {
  const router = new Router();
  const { service, modules } = options;

  router.get('/health/live', (ctx) => {
    ctx.body = { status: 'alive', service, modules, timestamp: isoDate(options.clock()) };
  });

  router.get('/health', async (ctx) => {
    const checks: Record<string, string> = {};
    const dbOk = await Promise.all(options.databases.map((db) => pingWithin(db, DATABASE_TIMEOUT_MS)));
    checks.database = dbOk.every(Boolean) ? 'connected' : 'disconnected';
    await Promise.all(
      Object.entries(options.peers).map(async ([name, url]) => {
        const ok = await fetch(`${url}/health/live`, { signal: AbortSignal.timeout(PEER_TIMEOUT_MS) })
          .then((r) => r.ok)
          .catch(() => false);
        checks[name] = ok ? 'reachable' : 'unreachable';
      }),
    );
    const healthy = Object.values(checks).every((v) => v === 'connected' || v === 'reachable');
    ctx.status = healthy ? 200 : 503;
    ctx.body = {
      status: healthy ? 'healthy' : 'unhealthy',
      service,
      modules,
      timestamp: isoDate(options.clock()),
      checks,
    };
  });
  return router;
}
