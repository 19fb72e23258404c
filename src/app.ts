import type { Config } from './kernel/config.js';
import { createKernel, type Kernel } from './kernel/kernel.js';
import type { Logger } from './kernel/logger.js';
import { modules } from './modules/index.js';
import type { UserPort } from './modules/user/index.js';

/** The TicketRemaster kernel with its modules; sessions are checked through the user port. */
export function createApp(config: Config, log?: Logger): Promise<Kernel> {
  return createKernel({
    config,
    modules,
    log,
    sessions: {
      port: 'user',
      check: (ports) => (sid, userId) => ports.get<UserPort>('user').isSessionActive({ sid, userId }),
    },
    info: {
      title: 'TicketRemaster API',
      version: '0.1.0',
      description:
        'Concert ticketing: accounts and credits, events and seats, purchase, transfer and door verification.',
    },
  });
}
