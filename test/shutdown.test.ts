import { randomUUID } from 'node:crypto';
import { get } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { freePort, spawnServer, waitForHealth } from './helpers/process.js';
import { streamed } from './helpers/stream.js';

/** A fresh TCP connection (no pooled keep-alive socket): resolves with the status or the error code. */
function connect(port: number): Promise<number | string> {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path: '/health', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

test('SIGTERM lets an in-flight request finish, refuses new connections and exits 0', async (t) => {
  const port = await freePort();
  const server = spawnServer({ PORT: String(port) });
  t.teardown(() => server.cleanup());
  const base = `http://127.0.0.1:${port}`;
  await waitForHealth(server, base);

  // A registration whose body trickles in over about 1.5 s.
  const body = JSON.stringify({
    email: `slow-${randomUUID()}@test.local`,
    phone: '+6591234567',
    password: 'slow-pass-1',
  });
  const chunks = Array.from({ length: 6 }, (_, i) => body.slice((i * body.length) / 6, ((i + 1) * body.length) / 6));
  const slow = streamed(`${base}/api/auth/register`, chunks, { pauseMs: 250 });

  await sleep(400);
  const signalled = Date.now();
  server.child.kill('SIGTERM');
  await sleep(200);
  t.is(await connect(port), 'ECONNREFUSED', 'a new connection during the drain is refused');

  const res = await slow;
  t.is(res.status, 201, JSON.stringify(res.body));
  t.is(res.body.data.email, JSON.parse(body).email);

  t.is(await server.exited, 0, server.output());
  t.true(Date.now() - signalled < 10_000, `exited ${Date.now() - signalled} ms after SIGTERM`);
  t.is(await connect(port), 'ECONNREFUSED', 'nothing listens after the exit');
});

test('SIGINT on an idle server exits 0 at once', async (t) => {
  const port = await freePort();
  const server = spawnServer({ PORT: String(port) });
  t.teardown(() => server.cleanup());
  await waitForHealth(server, `http://127.0.0.1:${port}`);
  server.child.kill('SIGINT');
  t.is(await server.exited, 0, server.output());
});
