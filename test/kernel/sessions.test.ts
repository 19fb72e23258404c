import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { guard, type Role, type SessionCheck } from '../../src/kernel/auth.js';
import type { AppError } from '../../src/kernel/errors.js';
import { createLogger } from '../../src/kernel/logger.js';
import { createSessionView, type SessionChanges } from '../../src/kernel/sessions.js';

/**
 * The session view of a slice without the user module, on its own: answers from memory while it
 * is fresh, falls back to the per-request check while it is not, and forgets what no valid token
 * can meet any more. The four-process test (split-start) shows it between real slices.
 */

const log = createLogger('silent');
const SID = ['5b1c3a52-8d4e-4b7a-9c2f-6e5d4a3b2c10', '5b1c3a52-8d4e-4b7a-9c2f-6e5d4a3b2c11'];
const USER = '3f1c9a52-8d4e-4b7a-9c2f-6e5d4a3b2c1d';

function owner() {
  const state = {
    revoked: [] as string[],
    roles: [] as SessionChanges['roles'],
    down: false,
    asked: [] as (string | null)[],
  };
  let clock = 0;
  const changes = async (since: string | null): Promise<SessionChanges> => {
    state.asked.push(since);
    if (state.down) throw new Error('user slice unreachable');
    return { at: new Date(++clock * 1000).toISOString(), revoked: [...state.revoked], roles: [...state.roles] };
  };
  const calls: string[] = [];
  const fallback: SessionCheck = async (sid) => {
    calls.push(sid);
    if (state.down) throw new Error('503');
    return { active: !state.revoked.includes(sid) };
  };
  return { state, changes, fallback, calls };
}

test('a fresh view answers from memory: revoked sessions are inactive, changed roles apply, nothing is called', async (t) => {
  const o = owner();
  const view = createSessionView({ changes: o.changes, fallback: o.fallback, log, keepMs: 60_000 });
  o.state.revoked = [SID[0]];
  o.state.roles = [{ userId: USER, role: 'staff' }];
  await view.refresh();
  t.true(view.fresh());
  t.deepEqual(await view.check(SID[0], USER), { active: false });
  t.deepEqual(await view.check(SID[1], USER), { active: true, role: 'staff' });
  t.deepEqual(await view.check(SID[1], 'another-user'), { active: true });
  t.deepEqual(o.calls, [], 'no per-request call');
  // The next question starts where the last answer said.
  await view.refresh();
  t.deepEqual(o.state.asked, [null, new Date(1000).toISOString()]);
});

test('before its first answer, and while it cannot refresh, the view checks each request instead', async (t) => {
  const o = owner();
  const view = createSessionView({ changes: o.changes, fallback: o.fallback, log, keepMs: 60_000, staleMs: 150 });
  t.false(view.fresh());
  t.deepEqual(await view.check(SID[0], USER), { active: true });
  t.deepEqual(o.calls, [SID[0]], 'never asked yet: the request is checked on its own');
  await view.refresh();
  o.state.down = true;
  await view.refresh();
  t.true(view.fresh(), 'one failed refresh leaves the last answer in use until it is stale');
  await sleep(200);
  t.false(view.fresh());
  await t.throwsAsync(
    view.check(SID[1], USER),
    { message: '503' },
    'stale: the per-request check answers, here an outage',
  );
  o.state.down = false;
  o.state.revoked = [SID[1]];
  await view.refresh();
  t.deepEqual(await view.check(SID[1], USER), { active: false });
});

test('revocations and role changes are forgotten once no valid token can meet them', async (t) => {
  const o = owner();
  const view = createSessionView({ changes: o.changes, fallback: o.fallback, log, keepMs: 100 });
  o.state.revoked = [SID[0]];
  o.state.roles = [{ userId: USER, role: 'admin' }];
  await view.refresh();
  t.deepEqual(await view.check(SID[0], USER), { active: false });
  o.state.revoked = [];
  o.state.roles = [];
  await sleep(150);
  await view.refresh();
  t.deepEqual(await view.check(SID[0], USER), { active: true }, 'kept no longer than keepMs');
});

test('started, it refreshes by itself every refreshMs, and stops', async (t) => {
  const o = owner();
  const view = createSessionView({ changes: o.changes, fallback: o.fallback, log, keepMs: 60_000, refreshMs: 30 });
  view.start();
  await sleep(200);
  await view.stop();
  const asked = o.state.asked.length;
  t.true(asked >= 4, `asked ${asked} times in 200 ms`);
  await sleep(100);
  t.is(o.state.asked.length, asked, 'no question after stop');
});

test('a check asked for fresh goes to the owner of sessions even while the view is fresh', async (t) => {
  const o = owner();
  const view = createSessionView({ changes: o.changes, fallback: o.fallback, log, keepMs: 60_000 });
  await view.refresh();
  t.true(view.fresh());
  t.deepEqual(await view.check(SID[0], USER), { active: true });
  t.deepEqual(o.calls, [], 'from memory');
  t.deepEqual(await view.check(SID[0], USER, { fresh: true }), { active: true });
  t.deepEqual(o.calls, [SID[0]], 'asked the owner');
});

test('a route refuses a role only after the owner of sessions confirmed it: a promotion is never refused stale', async (t) => {
  const route = guard(['staff', 'admin']) as (ctx: unknown, next: () => Promise<void>) => Promise<void>;
  const run = async (roles: { view: Role; owner: Role }) => {
    const asked: string[] = [];
    const ctx = {
      state: {
        authenticate: async (_type: string, options?: { fresh?: boolean }) => {
          asked.push(options?.fresh ? 'owner' : 'view');
          return { role: options?.fresh ? roles.owner : roles.view };
        },
      },
    };
    let reached = false;
    const outcome = await route(ctx, async () => {
      reached = true;
    }).then(
      () => 'allowed',
      (err: AppError) => err.code,
    );
    return { outcome, reached, asked };
  };
  t.deepEqual(await run({ view: 'staff', owner: 'staff' }), { outcome: 'allowed', reached: true, asked: ['view'] });
  t.deepEqual(await run({ view: 'customer', owner: 'staff' }), {
    outcome: 'allowed',
    reached: true,
    asked: ['view', 'owner'],
  });
  t.deepEqual(await run({ view: 'customer', owner: 'customer' }), {
    outcome: 'FORBIDDEN',
    reached: false,
    asked: ['view', 'owner'],
  });
});
