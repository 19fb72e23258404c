import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { freePort, type Server, signalGroup, spawnServer, waitForHealth } from './helpers/process.js';
import { streamed } from './helpers/stream.js';

/** Whether something accepts TCP connections on the port. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/** Polls until `done` holds or the time runs out; true when it held. */
async function within(ms: number, done: () => boolean | Promise<boolean>) {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await sleep(100)) if (await done()) return true;
  return done();
}

async function npmStart(t: ExecutionContext): Promise<{ server: Server; port: number }> {
  const port = await freePort();
  const server = spawnServer({ PORT: String(port) }, { launch: 'npm' });
  t.teardown(() => server.cleanup());
  await waitForHealth(server, `http://127.0.0.1:${port}`);
  return { server, port };
}

/** npm has exited, nothing listens on the port, and no process of npm's group is left behind. */
async function assertStopped(t: ExecutionContext, server: Server, port: number) {
  const code = await Promise.race([server.exited, sleep(5_000, 'still running')]);
  t.not(code, 'still running', `npm start did not exit: ${server.output()}`);
  t.false(await listening(port), 'the port is closed');
  t.true(await within(3_000, () => !signalGroup(server.child, 0)), 'no child of npm is left running');
}

/** A registration whose body trickles in over about 1.5 s: in flight when the signal comes. */
function slowRegistration(port: number) {
  const body = JSON.stringify({
    email: `slow-${randomUUID()}@test.local`,
    phone: '+6591234567',
    password: 'slow-pass-1',
  });
  const chunks = Array.from({ length: 6 }, (_, i) => body.slice((i * body.length) / 6, ((i + 1) * body.length) / 6));
  return streamed(`http://127.0.0.1:${port}/api/auth/register`, chunks, { pauseMs: 250 });
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} to the npm process alone stops npm start and its server, leaving no process behind`, async (t) => {
    const { server, port } = await npmStart(t);
    server.child.kill(signal);
    await assertStopped(t, server, port);
  });
}

test('Ctrl-C on npm start (SIGINT to its process group) lets an in-flight request finish, then stops everything', async (t) => {
  const { server, port } = await npmStart(t);
  const slow = slowRegistration(port);
  await sleep(400);
  signalGroup(server.child, 'SIGINT');
  const res = await slow;
  t.is(res.status, 201, JSON.stringify(res.body));
  await assertStopped(t, server, port);
});

// npm forwards the terminal's SIGINT to the server, which the terminal has already signalled.
test('a second signal during the drain does not cut the in-flight request short', async (t) => {
  const port = await freePort();
  const server = spawnServer({ PORT: String(port) });
  t.teardown(() => server.cleanup());
  await waitForHealth(server, `http://127.0.0.1:${port}`);
  const slow = slowRegistration(port);
  await sleep(400);
  server.child.kill('SIGINT');
  await sleep(200);
  server.child.kill('SIGINT');
  const res = await slow;
  t.is(res.status, 201, JSON.stringify(res.body));
  t.is(await server.exited, 0, server.output());
});

test('the start banner names every loaded module and shows the demo accounts only on the start that created them', async (t) => {
  const start = async (env: Record<string, string>) => {
    const port = await freePort();
    const server = spawnServer({ NODE_ENV: 'development', PORT: String(port), ...env });
    t.teardown(() => server.cleanup());
    await waitForHealth(server, `http://127.0.0.1:${port}`);
    server.child.kill('SIGTERM');
    t.is(await server.exited, 0, server.output());
    return { output: server.output(), port, dataDir: server.dataDir };
  };

  const fresh = await start({});
  t.true(
    fresh.output.includes(`TicketRemaster (user, order, event, orchestrator) on http://localhost:${fresh.port}`),
    fresh.output,
  );
  t.regex(fresh.output, /Demo accounts \(email \/ password \/ role\):/);
  t.regex(fresh.output, /alice@ticketremaster\.local \/ alice-pass-123 \/ customer/);
  t.regex(fresh.output, /bob@ticketremaster\.local \/ bob-pass-1234 \/ customer \(flagged\)/);

  const again = await start({ DATA_DIR: fresh.dataDir });
  t.true(
    again.output.includes(`TicketRemaster (user, order, event, orchestrator) on http://localhost:${again.port}`),
    again.output,
  );
  t.false(again.output.includes('Demo accounts'), again.output);
  t.false(/-pass-/.test(again.output), 'no password is printed on a restart');
});
