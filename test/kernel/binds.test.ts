import test from 'ava';
import { bind, compileNamed } from '../../src/kernel/binds.js';
import type { Database } from '../../src/kernel/persistence.js';
import { DATABASES, sharedApp } from '../helpers/app.js';

test('named placeholders become positional ones, a repeated name binding its value each time', (t) => {
  const sql = 'update seats set held_by = :user, updated_at = :now where id = :seat and held_until <= :now';
  t.deepEqual(bind(sql, { user: 'u', now: 5, seat: 's' }), {
    sql: 'update seats set held_by = ?, updated_at = ? where id = ? and held_until <= ?',
    values: ['u', 5, 's', 5],
  });
});

test('a statement is compiled once and the same text is reused for every call', (t) => {
  const sql = 'select :a as a';
  t.is(compileNamed(sql), compileNamed(sql));
  t.is(bind(sql, { a: 1 }).sql, bind(sql, { a: 2 }).sql);
});

test('casts, colons in quoted text and quoted identifiers are no placeholders', (t) => {
  t.deepEqual(
    bind(`select :at::timestamptz as "a:b", '12:30' as t, 'it''s :not' as u from x where y = :y`, { at: 1, y: 2 }),
    {
      sql: `select ?::timestamptz as "a:b", '12:30' as t, 'it''s :not' as u from x where y = ?`,
      values: [1, 2],
    },
  );
});

test('positional params pass through untouched', (t) => {
  const values = ['a', 1];
  t.deepEqual(bind('select ? as a, ? as b', values), { sql: 'select ? as a, ? as b', values });
});

test('a missing or an unknown name, or a positional ? among names, is a programming error', (t) => {
  t.throws(() => bind('select :a, :b', { a: 1 }), { message: /no value for :b/ });
  t.throws(() => bind('select :a', { a: 1, c: 2 }), { message: /does not use \(c\)/ });
  t.throws(() => bind('select :a, ?', { a: 1 }), { message: /positional/ });
  t.throws(() => bind('select : as x', {}), { message: /starts no placeholder/ });
  t.throws(() => bind("select ':a", { a: 1 }), { message: /unterminated/ });
});

for (const kind of DATABASES) {
  const app = sharedApp(kind);
  const db = (): Database => {
    const found = app.kernel.databases.get('user');
    if (!found) throw new Error('the user module has no database');
    return found;
  };

  test(`[${kind}] db.all binds by name outside and inside a transaction`, async (t) => {
    const sql = "select :a as a, :b as b, :a as again, '09:00' as literal";
    const expected = [{ a: 'x', b: 'y', again: 'x', literal: '09:00' }];
    t.deepEqual(await db().all(sql, { a: 'x', b: 'y' }), expected);
    t.deepEqual(await db().tx((trx) => db().all(sql, { b: 'y', a: 'x' }, trx)), expected);
    await t.throwsAsync(() => db().all(sql, { a: 'x' }), { message: /no value for :b/ });
    if (kind === 'postgres') t.deepEqual(await db().all('select :n::integer + 1 as n', { n: '41' }), [{ n: 42 }]);
  });
}
