import type { Middleware } from 'koa';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

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
