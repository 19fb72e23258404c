import { randomUUID } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { AppError } from '../../src/kernel/errors.js';
import type { Response, TestApp } from './app.js';

const ENVELOPE_KEYS = new Set(['success', 'error_code', 'message', 'details']);
/** Traces of internals: stack frames, source paths, driver and ORM names. */
const INTERNALS = /\bat .+:\d+|node_modules|\/src\/|\.ts\b|knex|mikro|sqlite|postgres|syntaxerror|typeerror/i;

/** The answer is the documented error: its status, its code, the envelope and nothing internal. */
export function isError(t: ExecutionContext, res: Response, status: number, code: string) {
  const shown = JSON.stringify(res.body);
  t.is(res.status, status, shown);
  t.is(res.body?.success, false, shown);
  t.is(res.body?.error_code, code, shown);
  t.is(typeof res.body?.message, 'string', shown);
  t.true(res.body.message.length > 0, shown);
  t.deepEqual(
    Object.keys(res.body).filter((k) => !ENVELOPE_KEYS.has(k)),
    [],
    `only the envelope's keys: ${shown}`,
  );
  t.false(INTERNALS.test(shown), `no internals: ${shown}`);
  t.regex(res.headers.get('content-type') ?? '', /^application\/json/);
}

/** A validation error that names the faulty field among its details. */
export function isInvalid(t: ExecutionContext, res: Response, field: string, code = 'VALIDATION_ERROR') {
  isError(t, res, 400, code);
  const fields = (res.body.details ?? []).map((d: { field: string }) => d.field);
  t.true(fields.includes(field), `details name ${field}: ${JSON.stringify(res.body)}`);
}

/**
 * Rows of a module's tables (`tables` maps a name of the caller's choice to a table), to show
 * that a refused request wrote nothing.
 */
export async function rowCounts<K extends string>(
  app: TestApp,
  module: string,
  tables: Record<K, string>,
): Promise<Record<K, number>> {
  const db = app.kernel.databases.get(module)!;
  const counts = {} as Record<K, number>;
  for (const [name, table] of Object.entries(tables) as [K, string][]) {
    const [row] = await db.all<{ n: number | string }>(`select count(*) as n from ${db.table(table)}`);
    counts[name] = Number(row.n);
  }
  return counts;
}

/** The fields of a user as the API shows them (profile, admin list and update), sorted. */
export const USER_VIEW_KEYS = [
  'created_at',
  'credit_balance',
  'email',
  'full_name',
  'is_flagged',
  'phone',
  'role',
  'user_id',
];

/** Asserts that a promise rejects with an AppError of this code. */
export async function rejects(t: ExecutionContext, p: Promise<unknown>, code: string) {
  const err = await t.throwsAsync(p);
  t.true(err instanceof AppError, `expected an AppError, got ${err?.constructor.name}: ${err?.message}`);
  t.is((err as AppError).code as string, code, err?.message);
}

/** Bodies sent as application/json that are not a JSON object. */
export const MALFORMED_JSON = [
  '{',
  '{"a":',
  "{'a':1}",
  '{"a":1,}',
  'undefined',
  'NaN',
  '[]',
  '"text"',
  '42',
  'true',
  'null',
];

/** Identifiers that are not UUIDs: each must answer 400 INVALID_UUID. */
export const BAD_UUIDS = [
  'not-a-uuid',
  '123',
  `${randomUUID()}0`,
  randomUUID().replace(/-/g, ''),
  "' OR 1=1 --",
  'g'.repeat(36),
];

/** The expected answer to a value of the wrong type or shape. */
export const invalid = { status: 400, code: 'VALIDATION_ERROR' };

/** Waits (up to `ms`) until `check` is true, asking every 50 ms; answers the last value of check. */
export async function until(check: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return check();
}
