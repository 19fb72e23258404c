import type { Logger } from './logger.js';

export type FaultAction = 'error' | 'hang' | 'exit';

/**
 * Named fault points for tests (FAULT_INJECTION, refused in production): a test makes the code
 * at a point throw, hang or crash the process, to prove what a caller or a recovery job does
 * then. Every port method is a point (`<port>.<method>`); flows name their own steps.
 */
export interface Faults {
  /** Whether any point is set: without one, callers skip `at` (an await on every port call and step). */
  readonly enabled: boolean;
  at(point: string): Promise<void>;
}

export class InjectedFault extends Error {
  constructor(readonly point: string) {
    super(`Injected fault at ${point}`);
    this.name = 'InjectedFault';
  }
}

export function createFaults(spec: string, log: Logger): Faults {
  const points = new Map<string, FaultAction>(
    spec
      .split(',')
      .filter(Boolean)
      .map((entry) => entry.split('=') as [string, FaultAction]),
  );
  if (!points.size) return { enabled: false, at: async () => undefined };
  log.warn({ faults: Object.fromEntries(points) }, 'fault injection is on');
  return {
    enabled: true,
    async at(point) {
      const action = points.get(point);
      if (!action) return;
      log.warn({ point, action }, 'injected fault');
      if (action === 'error') throw new InjectedFault(point);
      // A crash, not a shutdown: nothing after this point runs, as when the machine dies.
      if (action === 'exit') process.kill(process.pid, 'SIGKILL');
      await new Promise<never>(() => undefined);
    },
  };
}
