import type { Clock } from './kernel/clock.js';
import { type Config, loadConfig } from './kernel/config.js';
import { createKernel, type Kernel } from './kernel/kernel.js';
import type { Logger } from './kernel/logger.js';
import { modules } from './modules/index.js';

/** The configuration of the kernel and every module, from config/ and the environment. */
export const loadAppConfig = (env: NodeJS.ProcessEnv = process.env): Config => loadConfig(env, modules);

/**
 * The TicketRemaster kernel with its modules; sessions are checked through the user port, and a
 * slice without the user module keeps a view of their changes instead of asking per request.
 */
export function createApp(
  config: Config,
  options: { log?: Logger; clock?: Clock; background?: boolean } = {},
): Promise<Kernel> {
  return createKernel({
    config,
    modules,
    ...options,
    sessions: {
      port: 'user',
      check: (ports) => (sid, userId) => ports.get('user').isSessionActive({ sid, userId }),
      changes: (ports) => (since) => ports.get('user').sessionChanges({ since }),
    },
    info: {
      title: 'TicketRemaster API',
      version: '0.1.0',
      description:
        'Concert ticketing: accounts and credits, events and seats, purchase, transfer and door verification.',
    },
  });
}
