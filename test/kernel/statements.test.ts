import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import test from 'ava';
import Database from 'better-sqlite3';
import type { Database as ModuleDatabase } from '../../src/kernel/persistence.js';
import { DATABASES, sharedApp } from '../helpers/app.js';

/**
 * The kernel's statement executor (src/kernel/statements.ts): what a module sees of it. On
 * SQLite, statements outside a transaction commit in groups, one commit per turn of the event
 * loop, and a transaction is a savepoint inside the group; on PostgreSQL each statement commits
 * on its own and a transaction holds one client. Either way: a statement answers only once it is
 * committed, a failed statement or transaction undoes its own writes and nothing else, and
 * statements of many callers at once all land.
 */
for (const kind of DATABASES) {
  const app = sharedApp(kind, {
    ready: async (a) => {
      const db = a.kernel.databases.get('event') as ModuleDatabase;
      await db.all(`create table ${db.table('exec_probe')} (id varchar(64) primary key, tag varchar(64) not null)`);
    },
  });
  const db = () => app.kernel.databases.get('event') as ModuleDatabase;
  const probe = () => db().table('exec_probe');
  const insert = (id: string, tag: string, trx?: Parameters<ModuleDatabase['all']>[2]) =>
    db().all(`insert into ${probe()} (id, tag) values (?, ?)`, [id, tag], trx);
  const tagged = async (tag: string) =>
    (await db().all<{ id: string }>(`select id from ${probe()} where tag = ?`, [tag])).map((r) => r.id).sort();

  test(`[${kind}] forty writers at once, a failing statement and two transactions: exactly the right writes land`, async (t) => {
    const tag = randomUUID();
    const ids = Array.from({ length: 40 }, (_, i) => `${tag}:${String(i).padStart(2, '0')}`);
    const taken = `${tag}:taken`;
    await insert(taken, tag);
    const results = await Promise.allSettled([
      ...ids.map((id) => insert(id, tag)),
      // A duplicate key fails alone.
      insert(taken, tag),
      // A transaction that throws after two writes keeps neither.
      db().tx(async (trx) => {
        await insert(`${tag}:rolled-1`, tag, trx);
        await insert(`${tag}:rolled-2`, tag, trx);
        throw new Error('changed my mind');
      }),
      // A transaction that succeeds keeps both.
      db().tx(async (trx) => {
        await insert(`${tag}:kept-1`, tag, trx);
        await insert(`${tag}:kept-2`, tag, trx);
        return 'done';
      }),
    ]);
    const statuses = results.map((r) => r.status);
    t.deepEqual(statuses.slice(0, 40), Array(40).fill('fulfilled'), 'every plain insert answered');
    t.is(statuses[40], 'rejected', 'the duplicate key is refused');
    t.is(statuses[41], 'rejected', 'the throwing transaction rejects');
    t.like(results[42], { status: 'fulfilled', value: 'done' });
    t.deepEqual(await tagged(tag), [...ids, `${tag}:kept-1`, `${tag}:kept-2`, taken].sort());
  });

  test(`[${kind}] a transaction's statements are not interleaved with another caller's`, async (t) => {
    const tag = randomUUID();
    // While the transaction waits between its two writes, a plain insert arrives; the rollback
    // must undo the transaction's write and not the other caller's.
    let release!: () => void;
    const paused = new Promise<void>((r) => {
      release = r;
    });
    const inTx = db().tx(async (trx) => {
      await insert(`${tag}:tx`, tag, trx);
      await paused;
      throw new Error('rolled back');
    });
    const outside = insert(`${tag}:outside`, tag);
    setTimeout(release, 20);
    await t.throwsAsync(inTx, { message: 'rolled back' });
    await outside;
    t.deepEqual(await tagged(tag), [`${tag}:outside`]);
  });

  if (kind === 'postgres') {
    test("[postgres] the kernel's connections plan prepared statements once (ADR 5)", async (t) => {
      t.deepEqual(await db().all('show plan_cache_mode'), [{ plan_cache_mode: 'force_generic_plan' }]);
    });
  }

  if (kind === 'sqlite') {
    test('[sqlite] a write answers only after its commit: another connection sees it by then, and not before', async (t) => {
      const file = join(app.env.DATA_DIR, 'event.sqlite');
      const reader = new Database(file, { readonly: true, fileMustExist: true });
      t.teardown(() => reader.close());
      const seen = (id: string) =>
        reader.prepare('select count(*) as n from exec_probe where id = ?').get(id) as {
          n: number;
        };
      const id = `${randomUUID()}:durable`;
      const written = insert(id, 'durable');
      // The statement has run in the open group; until the group commits, no other connection sees it.
      t.is(seen(id).n, 0);
      await written;
      t.is(seen(id).n, 1);
    });
  }
}
