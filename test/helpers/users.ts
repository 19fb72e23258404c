import { randomUUID } from 'node:crypto';
import type { Clock } from '../../src/kernel/clock.js';
import { userPortDefinition } from '../../src/modules/user/index.js';
import { late, sharedApp, type Target, TEST_ADMIN, type TestApp } from './app.js';
import { rowCounts } from './assert.js';
import { adaptersOf } from './ports.js';

export interface TestUser {
  userId: string;
  email: string;
  password: string;
  token: string;
  refreshToken: string;
}

export async function login(app: TestApp, email: string, password: string): Promise<TestUser> {
  const res = await app.request('POST', '/api/auth/login', { body: { email, password } });
  if (res.status !== 200) throw new Error(`login ${email} failed: ${res.status} ${JSON.stringify(res.body)}`);
  const d = res.body.data;
  return { userId: d.user.user_id, email, password, token: d.access_token, refreshToken: d.refresh_token };
}

/** Registers a fresh customer and logs them in. */
export async function newUser(app: TestApp, extra: { phone?: string; full_name?: string } = {}): Promise<TestUser> {
  const email = `u-${randomUUID()}@test.local`;
  const password = 'correct-horse-1';
  const res = await app.request('POST', '/api/auth/register', {
    body: {
      email,
      password,
      phone: extra.phone ?? '+6591234567',
      ...(extra.full_name ? { full_name: extra.full_name } : {}),
    },
  });
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return login(app, email, password);
}

export const adminLogin = (app: TestApp) => login(app, TEST_ADMIN.email, TEST_ADMIN.password);

/** Grants credits (in credits, not cents) through the admin API. */
export async function grant(app: TestApp, admin: TestUser, userId: string, amount: number) {
  const res = await app.request('POST', '/api/admin/credits', {
    token: admin.token,
    body: { user_id: userId, amount, reason: 'test grant' },
  });
  if (res.status !== 201) throw new Error(`grant failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data;
}

/** The user port's two adapters: in-process, and HTTP against the app's internal routes. */
export const USER_ADAPTERS = adaptersOf('user', userPortDefinition);

/** One app for the file on one database, and its admin, logged in once before the tests. */
export function sharedAppWithAdmin(kind: Target, env: Record<string, string> = {}, clock?: Clock) {
  let admin: TestUser | undefined;
  const app = sharedApp(kind, {
    env,
    clock,
    ready: async (a) => {
      admin = await adminLogin(a);
    },
  });
  return { app, admin: late(() => admin, 'the admin') };
}

/** Rows of the user module's tables, to show that a refused request wrote nothing. */
export const userRowCounts = (app: TestApp) =>
  rowCounts(app, 'user', { users: 'users', ledger: 'credit_transactions', operations: 'idempotency_keys' });
