import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import Joi from 'joi';
import { loadConfig } from '../../src/kernel/config.js';
import { createKernel } from '../../src/kernel/kernel.js';
import { defineModule, type ModuleDefinition } from '../../src/kernel/module.js';
import type { RequiredPorts } from '../../src/kernel/registry.js';
import { userModule } from '../../src/modules/user/index.js';
import { rejects } from '../helpers/assert.js';

/** A module of one method, `ping`, that answers its own name. */
const pinger = (name: string, defaultPort: number) =>
  defineModule({
    name,
    defaultPort,
    entities: [],
    migrations: [],
    port: { name, methods: { ping: Joi.object({}) } },
    start: () => ({ routers: [], port: { ping: async () => ({ from: name }) } }),
  });

/**
 * A kernel of these modules on a fresh SQLite directory; `selection` is MODULES. The user
 * module's settings are always declared: config/test.json sets some of them.
 */
async function boot(t: ExecutionContext, modules: ModuleDefinition[], selection = 'all') {
  const dataDir = mkdtempSync(join(tmpdir(), 'tr-registry-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const declarations = [...new Set([userModule, ...modules])];
  const config = loadConfig({ NODE_ENV: 'test', DATA_DIR: dataDir, MODULES: selection }, declarations);
  const kernel = await createKernel({ config, modules });
  t.teardown(() => kernel.stop());
  return kernel;
}

test('a module that requires a module that does not exist stops the start, naming the module', async (t) => {
  const dreamer = defineModule({
    name: 'dreamer',
    defaultPort: 5901,
    entities: [],
    migrations: [],
    // @ts-expect-error a module that does not exist is no port name: the type says so, and the start too
    requires: ['nosuch'],
    start: () => ({ routers: [] }),
  });
  const err = await t.throwsAsync(boot(t, [dreamer]));
  t.regex(err?.message ?? '', /Module "dreamer" requires "nosuch"/);
});

test('a module that requires a module with no port stops the start, naming the module', async (t) => {
  const mute = defineModule({
    name: 'mute',
    defaultPort: 5902,
    entities: [],
    migrations: [],
    start: () => ({ routers: [] }),
  });
  const talker = defineModule({
    name: 'talker',
    defaultPort: 5903,
    entities: [],
    migrations: [],
    // @ts-expect-error mute has no port
    requires: ['mute'],
    start: () => ({ routers: [] }),
  });
  const err = await t.throwsAsync(boot(t, [mute, talker]));
  t.regex(err?.message ?? '', /Module "talker" requires "mute", which is not a module with a port/);
});

test('a required module this process does not load, with no URL, stops the start naming the module and the variable', async (t) => {
  const distant = pinger('distant', 5904);
  const caller = defineModule({
    name: 'caller',
    defaultPort: 5905,
    entities: [],
    migrations: [],
    // @ts-expect-error distant is a test module, unknown to PortTypes
    requires: ['distant'],
    start: () => ({ routers: [] }),
  });
  const err = await t.throwsAsync(boot(t, [distant, caller], 'caller'));
  t.regex(err?.message ?? '', /Module "caller" requires "distant", which this process does not load/);
  t.regex(err?.message ?? '', /DISTANT_URL/);
});

test('a module that uses a port it did not declare in requires stops the start, naming the module', async (t) => {
  const sneaky = defineModule({
    name: 'sneaky',
    defaultPort: 5906,
    entities: [],
    migrations: [],
    requires: ['user'],
    start: (ctx) => {
      // @ts-expect-error only the declared ports are on ctx.ports
      void ctx.ports.event;
      return { routers: [] };
    },
  });
  const err = await t.throwsAsync(boot(t, [userModule, sneaky]));
  t.regex(err?.message ?? '', /Module "sneaky" uses the port "event" without declaring it in requires/);
});

test('a declared port is handed to the module, typed, and answers in-process', async (t) => {
  let seen: RequiredPorts<'user'> | undefined;
  const probe = defineModule({
    name: 'probe',
    defaultPort: 5907,
    entities: [],
    migrations: [],
    requires: ['user'],
    start: (ctx) => {
      seen = ctx.ports;
      return { routers: [] };
    },
  });
  const kernel = await boot(t, [userModule, probe]);
  t.deepEqual(
    kernel.loaded.map((m) => m.name),
    ['user', 'probe'],
  );
  const ports = seen!;
  // The user port's own types: a call with the wrong arguments does not compile.
  // @ts-expect-error getUser takes { userId }
  await t.throwsAsync(ports.user.getUser({ id: randomUUID() }));
  await rejects(t, ports.user.getUser({ userId: randomUUID() }), 'USER_NOT_FOUND');
  t.is(ports.user, kernel.ports.get('user'), 'the same in-process adapter the registry hands out');
});

test('a test module’s port is served in-process to the module that requires it', async (t) => {
  const echo = pinger('echo', 5908);
  let answer: unknown;
  const listener = defineModule({
    name: 'listener',
    defaultPort: 5909,
    entities: [],
    migrations: [],
    // @ts-expect-error echo is a test module, unknown to PortTypes
    requires: ['echo'],
    start: (ctx) => ({
      routers: [],
      afterStart: async () => {
        const ports = ctx.ports as unknown as Record<string, { ping(a: object): Promise<unknown> }>;
        answer = await ports.echo.ping({});
      },
    }),
  });
  await boot(t, [echo, listener]);
  t.deepEqual(answer, { from: 'echo' });
});
