import type { Server } from 'node:http';
import type { Kernel } from './kernel.js';

export interface Running {
  server: Server;
  port: number;
  /** Stops accepting, lets in-flight requests finish, stops jobs, closes the ORMs. */
  close(): Promise<void>;
}

export async function listen(kernel: Kernel, port = kernel.listenPort(), host = '0.0.0.0'): Promise<Running> {
  const server = kernel.app.listen(port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  server.keepAliveTimeout = 5_000;
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  let closing: Promise<void> | undefined;
  return {
    server,
    port: actual,
    close() {
      closing ??= (async () => {
        const drained = new Promise<void>((resolve) => server.close(() => resolve()));
        // A keep-alive connection goes idle when its last request ends: close it then, not at its timeout.
        const sweep = setInterval(() => server.closeIdleConnections(), 100);
        server.closeIdleConnections();
        const deadline = setTimeout(() => server.closeAllConnections(), kernel.config.shutdownTimeoutMs - 1000);
        await drained;
        clearInterval(sweep);
        clearTimeout(deadline);
        await kernel.stop();
      })();
      return closing;
    },
  };
}

/** SIGTERM/SIGINT: drain and exit 0, or exit 1 if shutdown overruns its deadline. */
export function exitOnSignals(running: Running, kernel: Kernel) {
  let stopping = false;
  const stop = (signal: string) => {
    // A repeated signal (npm forwards the Ctrl-C the terminal has already sent) changes nothing;
    // with a `once` listener it would fall back to the default action and cut the drain short.
    if (stopping) return;
    stopping = true;
    kernel.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      kernel.log.error('shutdown timed out');
      process.exit(1);
    }, kernel.config.shutdownTimeoutMs);
    force.unref();
    running.close().then(
      () => {
        kernel.log.info('stopped');
        process.exit(0);
      },
      (err) => {
        kernel.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
