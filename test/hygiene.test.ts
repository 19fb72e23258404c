import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import test from 'ava';

/**
 * What a fresh clone holds: no scratch files, no path of the machine it was written on, and
 * nothing that points outside the repository (a user who clones it has only the repository).
 */

const tracked = execFileSync('git', ['ls-files', '-z'], { encoding: 'utf8' }).split('\0').filter(Boolean);
const TEXT = /\.(ts|js|mjs|json|md|yml|yaml|conf|sh)$|^(Dockerfile|Procfile|\.ci\/run|\.gitignore|\.dockerignore)$/;
const texts = tracked.filter((f) => TEXT.test(f) && f !== 'package-lock.json');

test('no scratch file is committed', (t) => {
  t.true(tracked.length > 50, `git ls-files sees the tree (${tracked.length} files)`);
  const scratch = tracked.filter((f) => /(^|\/)\.tmp|\.scratch\.|(^|\/)(scratch|tmp)\.[a-z]+$/.test(f));
  t.deepEqual(scratch, []);
});

test('no committed file names an absolute path of a machine', (t) => {
  const machinePath = /(^|[\s'"`(=])\/(work|home|root|Users|tmp)\/[A-Za-z0-9._-]+\//;
  const found = texts.filter((f) => machinePath.test(readFileSync(f, 'utf8')));
  t.deepEqual(found, []);
});

test('nothing in the repository points outside it (no ../shared, no spec files it does not have)', (t) => {
  const outside = /\.\.\/shared|shared\/spec|\b(API|ARCHITECTURE|PRODUCT|STYLE|TESTING)\.md\b/;
  const found = texts.filter((f) => f !== 'test/hygiene.test.ts' && outside.test(readFileSync(f, 'utf8')));
  t.deepEqual(found, []);
});
