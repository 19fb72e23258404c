import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import test from 'ava';
import { sources } from './helpers/sources.js';

/**
 * A suite that cannot run here (no PostgreSQL, no Chromium) is skipped with its reason and
 * counted as skipped: a placeholder that passes would count a
 * test that never ran as a passed one.
 */

test('without PostgreSQL the outage test is counted as skipped, with its reason, and nothing passes', async (t) => {
  const env = { ...process.env };
  delete env.DATABASE_URL;
  delete env.TEST_DATABASE_URL;
  const cli = 'node_modules/ava/entrypoints/cli.mjs';
  const { stdout } = await promisify(execFile)(process.execPath, [cli, '--tap', 'test/health.test.ts'], { env });
  t.regex(stdout, /^ok \d+ - .*skipped: no DATABASE_URL or TEST_DATABASE_URL # SKIP$/m);
  t.regex(stdout, /^# skip 1$/m);
  t.regex(stdout, /^# pass 0$/m);
});

test('no test is a placeholder that passes by calling t.pass', (t) => {
  const files = sources('test');
  t.true(files.includes('test/health.test.ts'), 'the scan sees test/');
  const placeholders = files.filter((file) => /\bt\.pass\(/.test(readFileSync(file, 'utf8')));
  t.deepEqual(placeholders, []);
});
