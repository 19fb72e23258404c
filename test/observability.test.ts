import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import test from 'ava';
import { createApp, loadAppConfig } from '../src/app.js';
import { createLogger } from '../src/kernel/logger.js';
import { listen } from '../src/kernel/server.js';
import { freshDatabase, request, sharedApp } from './helpers/app.js';
import { ADAPTERS, createEvent, holdOne, sellSeat } from './helpers/events.js';
import { metric } from './helpers/metrics.js';
import { adminLogin } from './helpers/users.js';

test('every request leaves one JSON log line with correlation id, module, method, path, status and duration', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  const db = await freshDatabase('sqlite');
  const kernel = await createApp(loadAppConfig({ NODE_ENV: 'test', ...db.env }), { log: createLogger('info', sink) });
  const running = await listen(kernel, 0, '127.0.0.1');
  t.teardown(async () => {
    await running.close();
    await db.drop();
  });
  const base = `http://127.0.0.1:${running.port}`;
  const id = `log-test-${randomUUID()}`;
  const res = await request(base, 'POST', '/api/auth/login', {
    headers: { 'x-correlation-id': id },
    body: { email: 'nobody@test.local', password: 'whatever-1' },
  });
  t.is(res.status, 401);
  const line = lines.find((l) => l.correlation_id === id && l.msg === 'request');
  t.like(line, { correlation_id: id, module: 'user', method: 'POST', path: '/api/auth/login', status: 401 });
  t.is(typeof line?.duration_ms, 'number');
  t.is(line?.level, 'info');
});

const app = sharedApp('sqlite');

test('/metrics counts holds taken and door scans by verdict', async (t) => {
  const e = await createEvent(app, await adminLogin(app), { rows: [{ row_number: 'A', seats: 2, category: 'CAT1' }] });
  const port = ADAPTERS.local(app);
  const before = await metric(app, 'event_holds_taken_total');
  const { userId } = await sellSeat(port, e.seats[0].seat_id);
  await holdOne(port, e.seats[1].seat_id, { ttlSeconds: 60 });
  t.is(await metric(app, 'event_holds_taken_total'), before + 2);
  for (let i = 0; i < 2; i++) {
    await port.checkIn({
      seatId: e.seats[0].seat_id,
      expectedOwnerId: userId,
      staffId: randomUUID(),
      presentedHall: 'HALL-A',
    });
  }
  t.is(await metric(app, 'event_scans_total', { result: 'SUCCESS' }), 1);
  t.is(await metric(app, 'event_scans_total', { result: 'DUPLICATE' }), 1);
});

test('npm run openapi writes the document of every module to the named file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tr-openapi-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'doc.json');
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/openapi.ts', file], { cwd: process.cwd() });
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  t.regex(doc.openapi, /^3\./);
  for (const path of ['/api/auth/login', '/api/credits/balance', '/api/events/{event_id}', '/api/admin/events']) {
    t.truthy(doc.paths[path], path);
  }
});
