import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ExecutionContext } from 'ava';

export interface Reply {
  status: number;
  /** Sent as JSON; `{}` when absent. */
  body?: unknown;
}

/**
 * A local HTTP server standing in for an external provider at its network edge,
 * closed when the test (or whatever `t` stands for) ends. `handle` gets each request with its body as text. Returns its URL.
 */
export async function standIn(
  t: Pick<ExecutionContext, 'teardown'>,
  handle: (req: IncomingMessage, raw: string) => Reply | Promise<Reply>,
) {
  const server = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const { status, body } = await handle(req, raw);
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body ?? {}));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
