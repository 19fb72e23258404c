import { randomUUID } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import Database from 'better-sqlite3';
import { createApp, loadAppConfig } from '../../src/app.js';
import type { Kernel } from '../../src/kernel/kernel.js';

/** The event module alone on a fresh SQLite directory (the checkpointer is SQLite's). */
async function eventKernel(t: import('ava').ExecutionContext): Promise<{ kernel: Kernel; file: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'tr-ckpt-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const kernel = await createApp(
    loadAppConfig({ NODE_ENV: 'test', MODULES: 'event', DATA_DIR: dir, DATABASE_URL: '', SEED_DEMO: 'false' }),
  );
  return { kernel, file: join(dir, 'event.sqlite') };
}

/**
 * Venues as the database file alone holds them, without its WAL: what checkpoints have copied back.
 * A copy taken while a checkpoint writes can be torn: undefined then, and the caller looks again.
 */
function venuesInFile(file: string): number | undefined {
  const copy = `${file}.copy`;
  copyFileSync(file, copy);
  try {
    const db = new Database(copy, { fileMustExist: true });
    try {
      // Before the first checkpoint, even the tables exist in the WAL only.
      const created = db.prepare(`select 1 from sqlite_master where name = 'venues'`).get();
      return created ? (db.prepare('select count(*) as n from "venues"').get() as { n: number }).n : 0;
    } finally {
      db.close();
    }
  } catch {
    return undefined;
  } finally {
    for (const f of [copy, `${copy}-wal`, `${copy}-shm`]) rmSync(f, { force: true });
  }
}

/** Polls the file's own count for up to 2 s, until it is `want`. */
async function venuesInFileReach(file: string, want: number): Promise<number | undefined> {
  let n = venuesInFile(file);
  for (let tries = 0; tries < 40 && n !== want; tries++) {
    await sleep(50);
    n = venuesInFile(file);
  }
  return n;
}

test('a few writes reach the database file within moments, without waiting for a thousand pages of WAL', async (t) => {
  const { kernel, file } = await eventKernel(t);
  t.teardown(() => kernel.stop());
  const db = kernel.databases.get('event');
  if (!db) throw new Error('no event database');
  // Whatever the start-up wrote (the schema) has been copied back already.
  const before = (await venuesInFileReach(file, 0)) ?? -1;
  t.is(before, 0);
  // 20 commits: some 20-40 pages of WAL, far below any autocheckpoint threshold.
  for (let i = 0; i < 20; i++) {
    await db.all(
      `insert into ${db.table('venues')} (id, name, address, total_halls, created_at) values (?, ?, ?, ?, ?)`,
      [randomUUID(), `Checkpoint Hall ${i}`, '1 Test Street', 1, Date.now()],
    );
  }
  t.is(await venuesInFileReach(file, 20), 20, 'the WAL was checkpointed into the database file');
});

test('stopping the kernel stops the checkpointer: the last connection closes and takes the WAL with it', async (t) => {
  const { kernel, file } = await eventKernel(t);
  t.true(existsSync(`${file}-wal`), 'the database runs in WAL mode');
  await kernel.stop();
  t.false(existsSync(`${file}-wal`), 'no connection is left open on the file');
  t.false(existsSync(`${file}-shm`));
});
