import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { DATABASES, sharedApp, type TestApp } from '../helpers/app.js';
import { orderSql } from '../helpers/orders.js';

/**
 * The transfers table, before the flows that use it: the database itself refuses a second
 * transfer under way (INITIATED or PENDING_OTP) for one seat, however the rows get there, and
 * a finished one blocks nothing.
 */

type Status = 'INITIATED' | 'PENDING_OTP' | 'COMPLETED' | 'DISPUTED' | 'REVERSED' | 'FAILED';

/** Inserts a transfer row with raw SQL; the promise rejects when the database refuses it. */
function insertTransfer(app: TestApp, seatId: string, status: Status | string, initiatedBy = 'SELLER') {
  const db = app.kernel.databases.get('order')!;
  const now = db.time(Date.now());
  const id = randomUUID();
  return db
    .all(
      `insert into ${db.table('transfers')} (id, seat_id, order_id, seller_user_id, buyer_user_id, credits_amount,
        status, initiated_by, created_at, updated_at)
       values (:id, :seatId, null, :seller, :buyer, 10000, :status, :initiatedBy, :now, :now)`,
      { id, seatId, seller: randomUUID(), buyer: randomUUID(), status, initiatedBy, now },
    )
    .then(() => id);
}

/** The database's error codes for a broken unique index and a failed check, on each dialect. */
const REFUSALS = {
  unique: ['SQLITE_CONSTRAINT_UNIQUE', '23505'],
  check: ['SQLITE_CONSTRAINT_CHECK', '23514'],
};

/** Asserts that the database refused the write for this reason. */
async function refused(t: ExecutionContext, write: Promise<unknown>, why: keyof typeof REFUSALS, what = '') {
  const err = await t.throwsAsync(write, { any: true }, what);
  t.true(REFUSALS[why].includes((err as { code?: string })?.code ?? ''), `${what}: ${String(err)}`);
}

const statusesOf = async (app: TestApp, seatId: string) =>
  (
    await orderSql<{ status: string }>(
      app,
      (t) => `select status from ${t('transfers')} where seat_id = ? order by status`,
      [seatId],
    )
  ).map((r) => r.status);

for (const kind of DATABASES) {
  const app = sharedApp(kind);
  const name = (s: string) => `[${kind}] ${s}`;

  test(name('a second transfer under way for one seat is refused by the database'), async (t) => {
    for (const [first, second] of [
      ['INITIATED', 'INITIATED'],
      ['INITIATED', 'PENDING_OTP'],
      ['PENDING_OTP', 'INITIATED'],
      ['PENDING_OTP', 'PENDING_OTP'],
    ]) {
      const seatId = randomUUID();
      await insertTransfer(app, seatId, first);
      await refused(t, insertTransfer(app, seatId, second), 'unique', `${first} then ${second}`);
      t.deepEqual(await statusesOf(app, seatId), [first]);
    }
  });

  test(name('finished transfers block nothing: a seat changes hands again and again'), async (t) => {
    const seatId = randomUUID();
    for (const done of ['COMPLETED', 'DISPUTED', 'REVERSED', 'FAILED', 'COMPLETED']) {
      await insertTransfer(app, seatId, done);
    }
    // A transfer under way beside the finished ones; other seats are free of it.
    const active = await insertTransfer(app, seatId, 'PENDING_OTP');
    await insertTransfer(app, randomUUID(), 'PENDING_OTP');
    await refused(t, insertTransfer(app, seatId, 'INITIATED'), 'unique');
    // Once it completes, the next one may start.
    await orderSql(app, (tb) => `update ${tb('transfers')} set status = 'COMPLETED' where id = ?`, [active]);
    await t.notThrowsAsync(insertTransfer(app, seatId, 'INITIATED'));
    t.deepEqual(await statusesOf(app, seatId), [
      'COMPLETED',
      'COMPLETED',
      'COMPLETED',
      'DISPUTED',
      'FAILED',
      'INITIATED',
      'REVERSED',
    ]);
  });

  test(name('a status or initiator outside its list is refused by the database'), async (t) => {
    const seatId = randomUUID();
    await refused(t, insertTransfer(app, seatId, 'DONE'), 'check');
    await refused(t, insertTransfer(app, seatId, 'INITIATED', 'ADMIN'), 'check');
    t.deepEqual(await statusesOf(app, seatId), []);
    await t.notThrowsAsync(insertTransfer(app, seatId, 'INITIATED', 'BUYER'));
  });

  test(name('an order status outside its list is refused by the database'), async (t) => {
    const db = app.kernel.databases.get('order')!;
    const now = db.time(Date.now());
    const insert = (status: string) =>
      db.all(
        `insert into ${db.table('orders')} (id, user_id, event_id, status, total, expires_at, created_at, updated_at)
         values (:id, :user, :event, :status, 100, :now, :now, :now)`,
        { id: randomUUID(), user: randomUUID(), event: randomUUID(), status, now },
      );
    await refused(t, insert('HELD'), 'check');
    await t.notThrowsAsync(insert('REFUNDED'));
  });
}
