import { AsyncLocalStorage } from 'node:async_hooks';
import { type DestinationStream, type Logger, pino } from 'pino';

export interface RequestScope {
  correlationId: string;
  module?: string;
  /** The request's entity managers, one per module database, forked on first use. */
  ems?: Map<string, unknown>;
}

/** The scope of the request being served, so that logs and internal calls carry its correlation id. */
export const requestScope = new AsyncLocalStorage<RequestScope>();

/** JSON lines on stdout (or `destination`), each carrying the request's correlation id and module. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const scope = requestScope.getStore();
        return scope ? { correlation_id: scope.correlationId, ...(scope.module ? { module: scope.module } : {}) } : {};
      },
    },
    destination,
  );
}

export type { Logger };
