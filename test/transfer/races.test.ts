import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { startApp, TARGETS, type TestApp } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import { type CreatedEvent, seatRow, smallEvent } from '../helpers/events.js';
import { otpWebhook, settleOutbox, sharedAppWithOtp, WEBHOOK } from '../helpers/otp-catcher.js';
import { bought, cents, checkInvariants, held, pay } from '../helpers/purchase.js';
import { act, balances, codesOf, confirm, type Deal, initiate, initiated, transferOf } from '../helpers/transfers.js';
import { adminLogin, grant, newUser, type TestUser } from '../helpers/users.js';

/**
 * Transfers under concurrency: requests on the same transfer or seat at once, each race run
 * several times. Whatever interleaving the databases pick, one side wins, the other gets the
 * documented refusal, and the ledgers show every credit once.
 */

const ROUNDS = 4;

for (const kind of TARGETS) {
  const { app, admin, otp } = sharedAppWithOtp(kind);
  const name = (s: string) => `[${kind}] ${s}`;
  let granted = 0;

  async function fan(credits = 500): Promise<TestUser> {
    const user = await newUser(app);
    await grant(app, admin, user.userId, credits);
    granted += cents(credits);
    return user;
  }
  const seatOf = (e: CreatedEvent, label: string) =>
    e.seats.find((s) => `${s.row_number}${s.seat_number}` === label)!.seat_id;

  /** A seller who owns B1 (bought for 80) of a fresh event, and a buyer with `buyerCredits`. */
  async function sale(credits = 50, buyerCredits = 500): Promise<Deal & { event: CreatedEvent }> {
    const event = await smallEvent(app, admin);
    const [seller, buyer] = [await fan(), await fan(buyerCredits)];
    const seat = seatOf(event, 'B1');
    await bought(app, seller, seat);
    return { event, seat, seller, buyer, credits };
  }

  test.after(name('every invariant holds once every race has run'), async (t) => {
    await checkInvariants(t, app, { granted });
  });

  test(name('two initiations for one seat: one 201, one 409 TRANSFER_IN_PROGRESS'), async (t) => {
    for (let round = 0; round < ROUNDS; round++) {
      const deal = await sale();
      const other = await fan();
      const answers = await Promise.all([
        initiate(app, deal),
        initiate(app, deal, deal.buyer),
        initiate(app, { ...deal, buyer: other }),
      ]);
      const statuses = answers.map((r) => r.status).sort();
      t.deepEqual(statuses, [201, 409, 409], JSON.stringify(answers.map((r) => r.body)));
      for (const r of answers.filter((a) => a.status === 409)) isError(t, r, 409, 'TRANSFER_IN_PROGRESS');
      const db = app.kernel.databases.get('order')!;
      const rows = await db.all<{ status: string }>(`select status from ${db.table('transfers')} where seat_id = ?`, [
        deal.seat,
      ]);
      t.deepEqual(
        rows.map((r) => r.status),
        ['PENDING_OTP'],
      );
    }
  });

  test(name('two confirms of one transfer: it completes once, the other gets 409'), async (t) => {
    for (let round = 0; round < ROUNDS; round++) {
      const deal = await sale(60);
      const id = await initiated(app, deal);
      const codes = await codesOf(otp, id, deal);
      const answers = await Promise.all([confirm(app, deal.seller, id, codes), confirm(app, deal.buyer, id, codes)]);
      t.deepEqual(answers.map((r) => r.status).sort(), [200, 409], JSON.stringify(answers.map((r) => r.body)));
      isError(t, answers.find((r) => r.status === 409)!, 409, 'TRANSFER_INVALID_STATE');
      t.deepEqual(await balances(app, deal.buyer), { spendable: 50000 - 6000, frozen: 0 }, 'charged once');
      t.deepEqual(await balances(app, deal.seller), { spendable: 42000 + 6000, frozen: 0 }, 'paid once');
      t.like(await seatRow(app, deal.seat), { owner_user_id: deal.buyer.userId });
    }
  });

  test(
    name('a confirm racing the buyer’s purchase with the same credits: one of them wins, no credit made or lost'),
    async (t) => {
      const outcomes = new Set<string>();
      for (let round = 0; round < ROUNDS + 2; round++) {
        // The buyer has 80 credits: enough for the transfer (80) or for seat B2 (80), not both.
        const deal = await sale(80, 80);
        const order = await held(app, deal.buyer, seatOf(deal.event, 'B2'));
        const id = await initiated(app, deal);
        const codes = await codesOf(otp, id, deal);
        const [transfer, purchase] = await Promise.all([
          confirm(app, deal.seller, id, codes),
          pay(app, deal.buyer, order.order_id),
        ]);
        const shown = JSON.stringify([transfer.body, purchase.body]);
        if (transfer.status === 200) {
          isError(t, purchase, 402, 'INSUFFICIENT_CREDITS');
          t.like(await seatRow(app, deal.seat), { owner_user_id: deal.buyer.userId }, shown);
          t.deepEqual(await balances(app, deal.seller), { spendable: 42000 + 8000, frozen: 0 });
          outcomes.add('transfer');
        } else {
          isError(t, transfer, 402, 'INSUFFICIENT_CREDITS');
          t.is(purchase.status, 200, shown);
          t.like((await transferOf(app, deal.seller, id)).body.data, { status: 'FAILED' });
          t.like(await seatRow(app, deal.seat), { owner_user_id: deal.seller.userId });
          t.deepEqual(await balances(app, deal.seller), { spendable: 42000, frozen: 0 });
          outcomes.add('purchase');
        }
        t.deepEqual(await balances(app, deal.buyer), { spendable: 0, frozen: 0 }, 'the buyer spent the 80 once');
      }
      t.log(`winners seen: ${[...outcomes].join(', ')}`);
    },
  );

  test(name('a dispute by both parties at once, and a reverse racing a resolve: one wins each time'), async (t) => {
    for (let round = 0; round < ROUNDS; round++) {
      const deal = await sale(40);
      const id = await initiated(app, deal);
      t.is((await confirm(app, deal.buyer, id, await codesOf(otp, id, deal))).status, 200);
      const disputes = await Promise.all([act(app, deal.seller, 'dispute', id), act(app, deal.buyer, 'dispute', id)]);
      t.deepEqual(disputes.map((r) => r.status).sort(), [200, 409], JSON.stringify(disputes.map((r) => r.body)));
      t.deepEqual(await balances(app, deal.seller), { spendable: 42000, frozen: 4000 }, 'frozen once');
      const decisions = await Promise.all([act(app, admin, 'reverse', id), act(app, admin, 'resolve', id)]);
      t.deepEqual(decisions.map((r) => r.status).sort(), [200, 409], JSON.stringify(decisions.map((r) => r.body)));
      const reversed = decisions[0].status === 200;
      t.like((await transferOf(app, admin, id)).body.data, { status: reversed ? 'REVERSED' : 'COMPLETED' });
      t.deepEqual(await balances(app, deal.seller), { spendable: reversed ? 42000 : 46000, frozen: 0 });
      t.deepEqual(await balances(app, deal.buyer), { spendable: reversed ? 50000 : 46000, frozen: 0 });
      t.like(await seatRow(app, deal.seat), { owner_user_id: reversed ? deal.seller.userId : deal.buyer.userId });
    }
  });
}

// Codes that run out: a short OTP_TTL_SECONDS, on an app of its own.
for (const kind of TARGETS) {
  test(`[${kind}] codes that run out end the transfer: confirm and verify-otp answer OTP_EXPIRED, the seat is free again`, async (t) => {
    const hook = await otpWebhook(t);
    const app: TestApp = await startApp(kind, { ...WEBHOOK(hook.url), OTP_TTL_SECONDS: '1' });
    t.teardown(() => app.close());
    hook.settle = () => settleOutbox(app);
    const admin = await adminLogin(app);
    const event = await smallEvent(app, admin);
    const [seller, buyer] = [await newUser(app), await newUser(app)];
    for (const u of [seller, buyer]) await grant(app, admin, u.userId, 500);
    const seat = event.seats[0].seat_id;
    await bought(app, seller, seat);
    const deal = { seat, seller, buyer, credits: 10 };
    const id = await initiated(app, deal);
    const codes = await codesOf(hook, id, deal);
    await sleep(1200);
    t.like((await transferOf(app, seller, id)).body.data, { status: 'FAILED' });
    isError(t, await confirm(app, buyer, id, codes), 410, 'OTP_EXPIRED');
    isError(
      t,
      await app.request('POST', '/api/verify-otp', {
        token: seller.token,
        body: { otp_code: codes.seller, context: 'transfer', reference_id: id },
      }),
      410,
      'OTP_EXPIRED',
    );
    t.deepEqual(await balances(app, buyer), { spendable: 50000, frozen: 0 });
    // A new transfer of the seat may start at once, before any sweep.
    const next = await initiate(app, deal);
    t.is(next.status, 201, JSON.stringify(next.body));
    const db = app.kernel.databases.get('order')!;
    const [row] = await db.all<{ status: string }>(`select status from ${db.table('transfers')} where id = ?`, [id]);
    t.is(row.status, 'FAILED', 'the expired transfer is written FAILED');
  });
}
