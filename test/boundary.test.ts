import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import test from 'ava';
import { sources } from './helpers/sources.js';

/**
 * The architecture rule (docs/decisions/0001): a module reaches another only through that
 * module's public entry (src/modules/B/index.ts), and the kernel knows no module at all. Tests
 * keep it too: a test reaches a module only through its public entry, unless it is that
 * module's own test (under test/<module>/), which may look inside for white-box checks.
 */

const ROOT = process.cwd();

/** The modules, by their folders under src/modules. */
const MODULES = new Set(
  readdirSync(join(ROOT, 'src/modules'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name),
);

/** Every import, re-export and dynamic import specifier of a source, type-only ones included. */
function importsOf(source: string): string[] {
  const found: string[] = [];
  const patterns = [
    /\b(?:import|export)\s+(?:type\s+)?[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
  ];
  for (const pattern of patterns) for (const m of source.matchAll(pattern)) found.push(m[1]);
  return found;
}

/**
 * Why `file` (a path under src/ or test/, with forward slashes) may not import `specifier`, or
 * undefined when it may. Package imports are always allowed.
 */
function violation(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.') && !specifier.startsWith('/')) return undefined;
  const target = posix
    .normalize(
      specifier.startsWith('/')
        ? relative(ROOT, specifier).split(sep).join('/')
        : posix.join(posix.dirname(file), specifier),
    )
    .replace(/\.(js|ts)$/, '');
  const fileModule = /^src\/modules\/([^/]+)\//.exec(file)?.[1];
  // src/modules/index is the module list, not a module.
  const targetModule = target === 'src/modules/index' ? undefined : /^src\/modules\/([^/]+)(\/|$)/.exec(target)?.[1];
  const isEntry = (name: string) => target === `src/modules/${name}/index` || target === `src/modules/${name}`;

  if (file.startsWith('src/kernel/')) {
    return target.startsWith('src/kernel/') ? undefined : `the kernel imports ${target}`;
  }
  if (file === 'src/modules/index.ts') {
    if (target.startsWith('src/kernel/') || (targetModule && isEntry(targetModule))) return undefined;
    return `the module list imports ${target}, not a module's public entry`;
  }
  if (fileModule) {
    if (target.startsWith('src/kernel/') || targetModule === fileModule) return undefined;
    if (targetModule && isEntry(targetModule)) return undefined;
    return targetModule
      ? `module "${fileModule}" imports ${target}, an internal of module "${targetModule}"`
      : `module "${fileModule}" imports ${target}, outside the kernel and the modules' public entries`;
  }
  if (file.startsWith('test/')) {
    if (target.startsWith('test/') || target.startsWith('src/kernel/')) return undefined;
    if (target === 'src/app' || target === 'src/main') return undefined;
    if (targetModule && isEntry(targetModule)) return undefined;
    const ownModule = /^test\/([^/]+)\//.exec(file)?.[1];
    if (targetModule && ownModule === targetModule && MODULES.has(ownModule)) return undefined;
    return targetModule
      ? `a test imports ${target}, an internal of module "${targetModule}", outside test/${targetModule}/`
      : `a test imports ${target}, outside the kernel, the app and the modules' public entries`;
  }
  return undefined;
}

/** Every import of the files, and the ones that break the rule. */
function scan(files: string[]) {
  let imports = 0;
  const faults: string[] = [];
  for (const file of files) {
    for (const specifier of importsOf(readFileSync(join(ROOT, file), 'utf8'))) {
      imports++;
      const why = violation(file, specifier);
      if (why) faults.push(`${file}: ${why} ('${specifier}')`);
    }
  }
  return { imports, faults };
}

test('no module imports another module’s internals, and the kernel imports no module', (t) => {
  const files = [...sources('src/kernel'), ...sources('src/modules')];
  t.true(files.includes('src/modules/user/index.ts'), 'the scan sees the user module');
  const { imports, faults } = scan(files);
  t.true(imports > 50, `read ${imports} imports`);
  t.deepEqual(faults, []);
});

test('tests import a module only through its public entry, unless they are that module’s own tests', (t) => {
  // This file's example imports are strings for the checker, not imports.
  const files = sources('test').filter((file) => file !== 'test/boundary.test.ts');
  t.true(files.includes('test/helpers/app.ts') && files.includes('test/event/expiry.test.ts'), 'the scan sees test/');
  t.true(MODULES.has('user') && MODULES.has('event'), `the modules: ${[...MODULES].join(', ')}`);
  const { imports, faults } = scan(files);
  t.true(imports > 100, `read ${imports} imports`);
  t.deepEqual(faults, []);
});

test('the checker finds every form of import', (t) => {
  const source = [
    "import Joi from 'joi';",
    "import { a, b } from '../user/index.js';",
    'import {\n  c,\n  type D,\n} from "../user/ledger.js";',
    "import type { E } from '../user/user.port.js';",
    "export { f } from '../user/accounts.js';",
    "export * from '../user/operations.js';",
    "const g = await import('../user/otp.js');",
    "import '../user/side-effect.js';",
  ].join('\n');
  t.deepEqual(importsOf(source).sort(), [
    '../user/accounts.js',
    '../user/index.js',
    '../user/ledger.js',
    '../user/operations.js',
    '../user/otp.js',
    '../user/side-effect.js',
    '../user/user.port.js',
    'joi',
  ]);
});

test('the checker flags a module reaching into another, and the kernel reaching into a module', (t) => {
  const order = 'src/modules/order/order.service.ts';
  const bad: [string, string][] = [
    [order, '../user/ledger.js'],
    [order, '../user/user.port.js'],
    [order, '../user/sub/dir/x.js'],
    [order, '../index.js'],
    [order, '../../app.js'],
    [order, '../../main.js'],
    [`${dirname(order)}/deep/file.ts`, '../../user/accounts.js'],
    [order, join(ROOT, 'src/modules/user/ledger.js')],
    ['src/kernel/kernel.ts', '../modules/user/index.js'],
    ['src/kernel/kernel.ts', '../modules/index.js'],
    ['src/kernel/kernel.ts', '../app.js'],
    ['src/modules/index.ts', './user/user.routes.js'],
  ];
  for (const [file, specifier] of bad) t.truthy(violation(file, specifier), `${file} → ${specifier}`);
  const good: [string, string][] = [
    [order, '../user/index.js'],
    [order, './order.entities.js'],
    [order, '../../kernel/routing.js'],
    [`${dirname(order)}/deep/file.ts`, '../../../kernel/errors.js'],
    [`${dirname(order)}/deep/file.ts`, '../order.port.js'],
    [order, 'joi'],
    [order, 'node:crypto'],
    ['src/kernel/kernel.ts', './routing.js'],
    ['src/modules/index.ts', './user/index.js'],
    ['src/modules/index.ts', '../kernel/module.js'],
  ];
  for (const [file, specifier] of good) t.is(violation(file, specifier), undefined, `${file} → ${specifier}`);
});

test('the checker lets a module’s own tests look inside it, and other tests only through public entries', (t) => {
  const bad: [string, string][] = [
    ['test/user/auth.test.ts', '../../src/modules/event/seats.js'],
    ['test/user/deep/x.test.ts', '../../../src/modules/event/event.port.js'],
    ['test/event/routes.test.ts', '../../src/modules/user/ledger.js'],
    ['test/helpers/events.ts', '../../src/modules/event/seats.js'],
    ['test/helpers/users.ts', '../../src/modules/user/user.port.js'],
    ['test/health.test.ts', '../src/modules/user/accounts.js'],
    ['test/kernel/routing.test.ts', '../../src/modules/user/user.routes.js'],
    ['test/health.test.ts', '../src/modules/index.js'],
    ['test/health.test.ts', '../scripts/openapi.js'],
    ['test/health.test.ts', join(ROOT, 'src/modules/event/catalog.js')],
    // A folder named like no module gets no white-box access.
    ['test/billing/x.test.ts', '../../src/modules/billing/billing.service.js'],
  ];
  for (const [file, specifier] of bad) t.truthy(violation(file, specifier), `${file} → ${specifier}`);
  const good: [string, string][] = [
    ['test/event/expiry.test.ts', '../../src/modules/event/seats.js'],
    ['test/event/deep/x.test.ts', '../../../src/modules/event/event.seed.js'],
    ['test/user/otp.test.ts', '../../src/modules/user/index.js'],
    ['test/user/otp.test.ts', '../../src/modules/event/index.js'],
    ['test/user/otp.test.ts', '../../src/kernel/ports.js'],
    ['test/helpers/events.ts', '../../src/modules/event/index.js'],
    ['test/helpers/app.ts', '../../src/app.js'],
    ['test/helpers/process.ts', '../../src/main.js'],
    ['test/health.test.ts', '../src/kernel/middleware.js'],
    ['test/health.test.ts', './helpers/app.js'],
    ['test/event/routes.test.ts', '../helpers/events.js'],
    ['test/health.test.ts', 'pg'],
  ];
  for (const [file, specifier] of good) t.is(violation(file, specifier), undefined, `${file} → ${specifier}`);
});
