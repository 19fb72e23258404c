import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { TARGETS, type TestApp } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import { ADAPTERS, type CreatedEvent, createEvent, newStaff, seatRow, smallEvent } from '../helpers/events.js';
import { ledgerSum } from '../helpers/ledger.js';
import { metric } from '../helpers/metrics.js';
import { sharedAppWithOtp } from '../helpers/otp-catcher.js';
import { bought, cents, checkInvariants, ledgerOf } from '../helpers/purchase.js';
import {
  act,
  balances,
  codesOf,
  confirm,
  type Deal,
  initiate,
  initiated,
  transferOf,
  wrong,
} from '../helpers/transfers.js';
import { grant, newUser, type TestUser } from '../helpers/users.js';

/**
 * The transfer flows end to end through the API: the three full cycles with both balances and
 * ledgers checked at every step, every refusal provoked for real (each writing nothing), the codes'
 * rules (both checked first, one failure per party, a verified code may be left out, three wrong
 * codes end the transfer), and NOT_OWNER at the door for the old owner's QR.
 */

for (const kind of TARGETS) {
  const { app, admin, otp } = sharedAppWithOtp(kind);
  const name = (s: string) => `[${kind}] ${s}`;
  let granted = 0;

  async function fan(credits = 500): Promise<TestUser> {
    const user = await newUser(app, { full_name: `Fan ${randomUUID().slice(0, 6)}` });
    if (credits > 0) {
      await grant(app, admin, user.userId, credits);
      granted += cents(credits);
    }
    return user;
  }
  const seatOf = (e: CreatedEvent, label: string) =>
    e.seats.find((s) => `${s.row_number}${s.seat_number}` === label)!.seat_id;

  /** A seller who bought B1 (80 credits) of a fresh event, and a buyer; both start with 500. */
  async function sale(credits = 50): Promise<Deal & { event: CreatedEvent }> {
    const event = await smallEvent(app, admin);
    const [seller, buyer] = [await fan(), await fan()];
    const seat = seatOf(event, 'B1');
    await bought(app, seller, seat);
    return { event, seat, seller, buyer, credits };
  }

  /** The seat's transfers and the users' ledger entries: what a refusal must not have written. */
  async function traces(app: TestApp, seatId: string, users: TestUser[]) {
    const db = app.kernel.databases.get('order')!;
    const transfers = await db.all(`select id from ${db.table('transfers')} where seat_id = ?`, [seatId]);
    const ledger = await Promise.all(users.map((u) => ledgerOf(app, u.userId)));
    return { transfers: transfers.length, ledger: ledger.flat().length };
  }

  async function expectBalances(t: ExecutionContext, user: TestUser, spendable: number, frozen: number, what: string) {
    t.deepEqual(await balances(app, user), { spendable, frozen }, what);
    const sum = await ledgerSum(app, user.userId);
    t.is(sum.sum, spendable + frozen, `${what}: the ledger sums to the balance`);
  }

  const ticketsOf = async (user: TestUser) =>
    (await app.request('GET', '/api/tickets', { token: user.token })).body.data as {
      seat_id: string;
      acquired_via: string;
    }[];

  test.after(name('every invariant holds once every test has run'), async (t) => {
    await checkInvariants(t, app, { granted });
  });

  test.serial(name('seller-initiated → confirm → dispute → reverse, with the ledgers at each step'), async (t) => {
    const ends = async () =>
      Object.fromEntries(
        await Promise.all(
          ['completed', 'disputed', 'reversed'].map(async (o) => [
            o,
            await metric(app, 'orchestrator_transfers_total', { outcome: o }),
          ]),
        ),
      );
    const endsBefore = await ends();
    const deal = await sale(50);
    const { seller, buyer, seat } = deal;
    const staff = await newStaff(app, admin);
    const before = { seller: 50000 - 8000, buyer: 50000 };
    await expectBalances(t, seller, before.seller, 0, 'the seller after buying the seat');
    const oldQr = (await app.request('GET', `/api/tickets/${seat}/qr`, { token: seller.token })).body.data.qr_payload;

    const res = await initiate(app, deal);
    t.is(res.status, 201, JSON.stringify(res.body));
    t.like(res.body.data, { seat_id: seat, status: 'PENDING_OTP', initiated_by: 'SELLER', credits_amount: 50 });
    const id = res.body.data.transfer_id as string;
    t.true(Date.parse(res.body.data.expires_at) > Date.now());
    await expectBalances(t, seller, before.seller, 0, 'initiating moves nothing');
    await expectBalances(t, buyer, before.buyer, 0, 'initiating moves nothing');
    for (const party of [seller, buyer, admin]) {
      t.like((await transferOf(app, party, id)).body.data, { transfer_id: id, status: 'PENDING_OTP' });
    }
    isError(t, await transferOf(app, await fan(0), id), 404, 'TRANSFER_NOT_FOUND');
    const sent = await otp.sent(id);
    t.deepEqual(
      sent.map((d) => [d.user_id, d.purpose]).sort(),
      [
        [buyer.userId, 'transfer'],
        [seller.userId, 'transfer'],
      ].sort() as [string, string][],
    );

    const codes = await codesOf(otp, id, deal);
    const done = await confirm(app, buyer, id, codes);
    t.is(done.status, 200, JSON.stringify(done.body));
    t.deepEqual(done.body.data, {
      transfer_id: id,
      status: 'COMPLETED',
      seat_id: seat,
      new_owner_user_id: buyer.userId,
      credits_transferred: 50,
      message: done.body.data.message,
    });
    await expectBalances(t, seller, before.seller + 5000, 0, 'the seller is paid');
    await expectBalances(t, buyer, before.buyer - 5000, 0, 'the buyer paid');
    const entries = (await ledgerOf(app)).filter((e) => e.reference_id === id);
    t.deepEqual(
      entries.map((e) => [e.user_id, e.type, e.amount]).sort(),
      [
        [buyer.userId, 'TRANSFER_OUT', -5000],
        [seller.userId, 'TRANSFER_IN', 5000],
      ].sort() as [string, string, number][],
    );
    t.like(await seatRow(app, seat), { status: 'SOLD', owner_user_id: buyer.userId });
    t.deepEqual(
      (await ticketsOf(buyer)).map((x) => [x.seat_id, x.acquired_via]),
      [[seat, 'TRANSFER']],
    );
    t.deepEqual(await ticketsOf(seller), []);
    t.like((await transferOf(app, seller, id)).body.data, { status: 'COMPLETED', expires_at: null });

    // The seller's code from before the transfer names the seller: not the owner any more.
    const scan = await app.request('POST', '/api/verify', {
      token: staff.token,
      body: { qr_payload: oldQr, hall_id: deal.event.hallId },
    });
    t.like(scan.body.data, { result: 'NOT_OWNER', seat_id: seat });
    isError(t, await app.request('GET', `/api/tickets/${seat}/qr`, { token: seller.token }), 403, 'NOT_SEAT_OWNER');
    isError(t, await confirm(app, buyer, id, codes), 409, 'TRANSFER_INVALID_STATE');

    const disputed = await act(app, buyer, 'dispute', id);
    t.is(disputed.status, 200, JSON.stringify(disputed.body));
    t.like(disputed.body.data, { transfer_id: id, status: 'DISPUTED', frozen_credits: 50 });
    await expectBalances(t, seller, before.seller, 5000, 'the dispute freezes the price');
    isError(t, await act(app, seller, 'dispute', id), 409, 'TRANSFER_INVALID_STATE');
    t.like((await transferOf(app, admin, id)).body.data, {
      status: 'DISPUTED',
      dispute_reason: 'The seat was not as described.',
      frozen_credits: 50,
    });

    isError(t, await act(app, seller, 'reverse', id), 403, 'FORBIDDEN');
    const reversed = await act(app, admin, 'reverse', id);
    t.is(reversed.status, 200, JSON.stringify(reversed.body));
    t.like(reversed.body.data, {
      transfer_id: id,
      status: 'REVERSED',
      seat_id: seat,
      restored_owner_user_id: seller.userId,
      credits_returned: 50,
    });
    await expectBalances(t, seller, before.seller, 0, 'the seller is back where they started');
    await expectBalances(t, buyer, before.buyer, 0, 'the buyer has the credits back');
    t.like(await seatRow(app, seat), { status: 'SOLD', owner_user_id: seller.userId });
    t.deepEqual(
      (await ticketsOf(seller)).map((x) => x.seat_id),
      [seat],
    );
    isError(t, await act(app, admin, 'reverse', id), 409, 'TRANSFER_INVALID_STATE');
    isError(t, await act(app, admin, 'resolve', id), 409, 'TRANSFER_INVALID_STATE');
    t.like((await transferOf(app, buyer, id)).body.data, { status: 'REVERSED' });
    const endsAfter = await ends();
    t.deepEqual(
      Object.keys(endsAfter).map((o) => endsAfter[o] - endsBefore[o]),
      [1, 1, 1],
      'the business counter saw one completion, one dispute and one reversal',
    );
  });

  test(name('confirm → dispute → resolve: a part of the price is frozen when the seller spent the rest'), async (t) => {
    const deal = await sale(100);
    const { seller, buyer, seat } = deal;
    const id = await initiated(app, deal);
    t.is((await confirm(app, seller, id, await codesOf(otp, id, deal))).status, 200);
    await expectBalances(t, seller, 42000 + 10000, 0, 'paid');
    // The seller spends all but 30 credits before the buyer disputes.
    const spend = await grantSink(seller, 52000 - 3000);
    t.truthy(spend);
    const disputed = await act(app, buyer, 'dispute', id, 'Wrong seat');
    t.like(disputed.body.data, { status: 'DISPUTED', frozen_credits: 30 });
    await expectBalances(t, seller, 0, 3000, 'up to the price, of what the seller has');

    isError(t, await act(app, buyer, 'resolve', id), 403, 'FORBIDDEN');
    const resolved = await act(app, admin, 'resolve', id);
    t.is(resolved.status, 200, JSON.stringify(resolved.body));
    t.like(resolved.body.data, { transfer_id: id, status: 'COMPLETED', credits_released: 30 });
    await expectBalances(t, seller, 3000, 0, 'the frozen credits are the seller’s again');
    await expectBalances(t, buyer, 40000, 0, 'the buyer keeps the ticket and paid once');
    t.like(await seatRow(app, seat), { owner_user_id: buyer.userId });
    // A decided dispute is not opened again.
    isError(t, await act(app, buyer, 'dispute', id), 409, 'TRANSFER_INVALID_STATE');
    isError(t, await act(app, admin, 'reverse', id), 409, 'TRANSFER_INVALID_STATE');
  });

  /** Spends `amount` cents of the user's credits by buying seats of a pricey event (none left over). */
  async function grantSink(user: TestUser, amount: number) {
    // One seat priced exactly `amount`.
    const e = await createEvent(app, admin, {
      rows: [{ row_number: 'Z', seats: 1, category: 'CAT1' }],
      extra: { pricing_tiers: { CAT1: amount / 100 } },
    });
    return bought(app, user, e.seats[0].seat_id);
  }

  test(name('buyer-initiated, the buyer verifies its code first, the seller confirms with its own'), async (t) => {
    const deal = await sale(80);
    const { seller, buyer, seat } = deal;
    const res = await initiate(app, deal, buyer);
    t.is(res.status, 201, JSON.stringify(res.body));
    t.like(res.body.data, { initiated_by: 'BUYER', status: 'PENDING_OTP' });
    const id = res.body.data.transfer_id;
    const codes = await codesOf(otp, id, deal);

    // Without the buyer's code, and the buyer has not verified it: nothing is counted.
    const missing = await confirm(app, seller, id, { seller: codes.seller });
    isError(t, missing, 400, 'VALIDATION_ERROR');
    t.is(missing.body.details[0].field, 'buyer_otp');

    const verified = await app.request('POST', '/api/verify-otp', {
      token: buyer.token,
      body: { otp_code: codes.buyer, context: 'transfer', reference_id: id },
    });
    t.is(verified.status, 200, JSON.stringify(verified.body));
    // Someone who is not a party cannot verify a code against it.
    const stranger = await fan(0);
    isError(
      t,
      await app.request('POST', '/api/verify-otp', {
        token: stranger.token,
        body: { otp_code: codes.buyer, context: 'transfer', reference_id: id },
      }),
      404,
      'TRANSFER_NOT_FOUND',
    );
    isError(t, await confirm(app, stranger, id, codes), 403, 'FORBIDDEN');

    const done = await confirm(app, seller, id, { seller: codes.seller });
    t.is(done.status, 200, JSON.stringify(done.body));
    await expectBalances(t, seller, 42000 + 8000, 0, 'the seller is paid');
    await expectBalances(t, buyer, 50000 - 8000, 0, 'the buyer paid');
    t.like(await seatRow(app, seat), { owner_user_id: buyer.userId });
    t.like((await transferOf(app, buyer, id)).body.data, { initiated_by: 'BUYER', status: 'COMPLETED' });
  });

  test(name('a ticket can be given away for 0 credits, and the gift is reversed without money'), async (t) => {
    const deal = await sale(0);
    const id = await initiated(app, deal);
    t.is((await confirm(app, deal.buyer, id, await codesOf(otp, id, deal))).status, 200);
    await expectBalances(t, deal.buyer, 50000, 0, 'a gift costs nothing');
    t.like((await act(app, deal.seller, 'dispute', id)).body.data, { status: 'DISPUTED', frozen_credits: 0 });
    t.like((await act(app, admin, 'reverse', id)).body.data, { status: 'REVERSED', credits_returned: 0 });
    t.like(await seatRow(app, deal.seat), { owner_user_id: deal.seller.userId });
  });

  test(name('initiate refuses, in order, and writes nothing'), async (t) => {
    const deal = await sale(50);
    const { seller, buyer, seat } = deal;
    const stranger = await fan(0);
    const poor = await fan(10);
    const parties = [seller, buyer, stranger, poor];
    const before = await traces(app, seat, parties);
    const used = await sale(50);
    await app.request('POST', '/api/verify', {
      token: (await newStaff(app, admin)).token,
      body: {
        qr_payload: (await app.request('GET', `/api/tickets/${used.seat}/qr`, { token: used.seller.token })).body.data
          .qr_payload,
        hall_id: used.event.hallId,
      },
    });
    const cases: [string, Deal, TestUser, number, string][] = [
      ['self', { ...deal, buyer: seller }, seller, 400, 'SELF_TRANSFER'],
      ['not a party', deal, stranger, 403, 'FORBIDDEN'],
      ['no such buyer', { ...deal, buyer: { ...buyer, userId: randomUUID() } }, seller, 404, 'USER_NOT_FOUND'],
      ['no such seller', { ...deal, seller: { ...seller, userId: randomUUID() } }, buyer, 404, 'USER_NOT_FOUND'],
      ['no such seat', { ...deal, seat: randomUUID() }, seller, 404, 'SEAT_NOT_FOUND'],
      ['not the owner', { ...deal, seller: stranger }, stranger, 403, 'NOT_SEAT_OWNER'],
      ['a free seat', { ...deal, seat: seatOf(deal.event, 'B2') }, seller, 403, 'NOT_SEAT_OWNER'],
      ['a used ticket', { ...used, buyer }, used.seller, 409, 'SEAT_UNAVAILABLE'],
      ['a poor buyer', { ...deal, buyer: poor, credits: 10.01 }, seller, 402, 'INSUFFICIENT_CREDITS'],
    ];
    for (const [what, d, caller, status, code] of cases) {
      const res = await initiate(app, d, caller);
      t.is(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
      t.is(res.body.error_code, code, what);
    }
    for (const bad of [-1, 0.001, 1_000_001, '5', null]) {
      const res = await initiate(app, { ...deal, credits: bad as number });
      t.is(res.status, 400, `credits_amount ${bad}`);
      t.is(res.body.details?.[0]?.field, 'credits_amount');
    }
    t.deepEqual(await traces(app, seat, parties), before, 'no transfer and no ledger entry was written');
    t.deepEqual(await otp.sent(seat), []);

    const first = await initiated(app, deal);
    isError(t, await initiate(app, deal, buyer), 409, 'TRANSFER_IN_PROGRESS');
    t.like((await transferOf(app, seller, first)).body.data, { status: 'PENDING_OTP' });
  });

  test(name('codes: a wrong one counts for its party only; the third ends the transfer, the seat stays'), async (t) => {
    const deal = await sale(50);
    const { seller, buyer, seat } = deal;
    const id = await initiated(app, deal);
    const codes = await codesOf(otp, id, deal);

    const once = await confirm(app, buyer, id, { seller: wrong(codes.seller), buyer: codes.buyer });
    isError(t, once, 401, 'OTP_INVALID');
    t.true(
      once.body.details.some((d: { field: string }) => d.field === 'seller_otp'),
      JSON.stringify(once.body),
    );
    // The buyer's right code stays valid, and was recorded: it may be left out now.
    const twice = await confirm(app, buyer, id, { seller: wrong(codes.seller) });
    isError(t, twice, 401, 'OTP_INVALID');
    await expectBalances(t, buyer, 50000, 0, 'nothing moved');
    // The buyer's budget is untouched: two wrong buyer codes do not end it.
    isError(t, await confirm(app, buyer, id, { seller: codes.seller, buyer: wrong(codes.buyer) }), 401, 'OTP_INVALID');
    const third = await confirm(app, seller, id, { seller: wrong(codes.seller), buyer: codes.buyer });
    isError(t, third, 429, 'OTP_MAX_RETRIES');
    t.like((await transferOf(app, seller, id)).body.data, { status: 'FAILED' });
    isError(t, await confirm(app, buyer, id, codes), 409, 'TRANSFER_INVALID_STATE');
    await expectBalances(t, buyer, 50000, 0, 'nothing moved');
    t.like(await seatRow(app, seat), { owner_user_id: seller.userId });
    // The seat is free for a new transfer.
    const next = await initiated(app, deal);
    t.is((await confirm(app, buyer, next, await codesOf(otp, next, deal))).status, 200);
  });

  test(name('a buyer who spent the credits meanwhile: 402, the transfer FAILED, nothing moved'), async (t) => {
    const deal = await sale(400);
    const { seller, buyer, seat } = deal;
    const id = await initiated(app, deal);
    await grantSink(buyer, 20000);
    const res = await confirm(app, seller, id, await codesOf(otp, id, deal));
    isError(t, res, 402, 'INSUFFICIENT_CREDITS');
    t.like((await transferOf(app, seller, id)).body.data, { status: 'FAILED' });
    await expectBalances(t, buyer, 30000, 0, 'nothing moved');
    await expectBalances(t, seller, 42000, 0, 'nothing moved');
    t.like(await seatRow(app, seat), { owner_user_id: seller.userId });
  });

  test(name('a seller who used the ticket meanwhile: the credits go back to the buyer, FAILED'), async (t) => {
    const deal = await sale(50);
    const { seller, buyer, seat } = deal;
    const id = await initiated(app, deal);
    const staff = await newStaff(app, admin);
    const qr = (await app.request('GET', `/api/tickets/${seat}/qr`, { token: seller.token })).body.data.qr_payload;
    const scan = await app.request('POST', '/api/verify', {
      token: staff.token,
      body: { qr_payload: qr, hall_id: deal.event.hallId },
    });
    t.like(scan.body.data, { result: 'SUCCESS' });
    const res = await confirm(app, buyer, id, await codesOf(otp, id, deal));
    isError(t, res, 409, 'SEAT_UNAVAILABLE');
    t.like((await transferOf(app, seller, id)).body.data, { status: 'FAILED' });
    await expectBalances(t, buyer, 50000, 0, 'paid and refunded');
    await expectBalances(t, seller, 42000, 0, 'nothing kept');
    const entries = (await ledgerOf(app)).filter((e) => e.reference_id === id);
    t.is(
      entries.reduce((s, e) => s + e.amount, 0),
      0,
      'the transfer moved nothing net',
    );
    t.like(await seatRow(app, seat), { status: 'CHECKED_IN', owner_user_id: seller.userId });
  });

  test(name('reverse refuses with SEAT_UNAVAILABLE when the buyer used the ticket; the dispute stays'), async (t) => {
    const deal = await sale(50);
    const { seller, buyer, seat } = deal;
    const id = await initiated(app, deal);
    await confirm(app, buyer, id, await codesOf(otp, id, deal));
    await act(app, seller, 'dispute', id);
    const staff = await newStaff(app, admin);
    const qr = (await app.request('GET', `/api/tickets/${seat}/qr`, { token: buyer.token })).body.data.qr_payload;
    await app.request('POST', '/api/verify', {
      token: staff.token,
      body: { qr_payload: qr, hall_id: deal.event.hallId },
    });
    isError(t, await act(app, admin, 'reverse', id), 409, 'SEAT_UNAVAILABLE');
    t.like((await transferOf(app, seller, id)).body.data, { status: 'DISPUTED', frozen_credits: 50 });
    await expectBalances(t, seller, 42000, 5000, 'still frozen');
    t.like((await act(app, admin, 'resolve', id)).body.data, { status: 'COMPLETED', credits_released: 50 });
    await expectBalances(t, seller, 47000, 0, 'released');
  });

  test(name('dispute, reverse and resolve refuse what they cannot do'), async (t) => {
    const deal = await sale(50);
    const id = await initiated(app, deal);
    const stranger = await fan(0);
    isError(t, await act(app, deal.buyer, 'dispute', id), 409, 'TRANSFER_INVALID_STATE');
    isError(t, await act(app, stranger, 'dispute', id), 403, 'FORBIDDEN');
    isError(t, await act(app, admin, 'reverse', id), 409, 'TRANSFER_INVALID_STATE');
    isError(t, await act(app, admin, 'resolve', id), 409, 'TRANSFER_INVALID_STATE');
    for (const action of ['dispute', 'reverse', 'resolve'] as const) {
      isError(
        t,
        await act(app, action === 'dispute' ? deal.buyer : admin, action, randomUUID()),
        404,
        'TRANSFER_NOT_FOUND',
      );
    }
    isError(
      t,
      await confirm(app, deal.buyer, randomUUID(), { seller: '000000', buyer: '000000' }),
      404,
      'TRANSFER_NOT_FOUND',
    );
    for (const reason of ['', '   ', 'x'.repeat(501), 42]) {
      const res = await app.request('POST', '/api/transfer/dispute', {
        token: deal.buyer.token,
        body: { transfer_id: id, reason },
      });
      t.is(res.status, 400, `reason ${JSON.stringify(reason)}`);
    }
    for (const code of ['12345', '1234567', 'abcdef', 123456]) {
      const res = await app.request('POST', '/api/transfer/confirm', {
        token: deal.buyer.token,
        body: { transfer_id: id, seller_otp: code },
      });
      t.is(res.status, 400, `code ${JSON.stringify(code)}`);
    }
    t.like((await transferOf(app, deal.seller, id)).body.data, { status: 'PENDING_OTP' });
  });

  test(name('a late retry of the sale’s seat move, after the reversal, changes nothing'), async (t) => {
    const deal = await sale(50);
    const { seller, buyer, seat } = deal;
    const id = await initiated(app, deal);
    t.is((await confirm(app, buyer, id, await codesOf(otp, id, deal))).status, 200);
    await act(app, seller, 'dispute', id);
    t.is((await act(app, admin, 'reverse', id)).status, 200);
    t.like(await seatRow(app, seat), { owner_user_id: seller.userId });
    // The confirm's own call, as a retry of it would arrive, in process and over HTTP.
    const lateMove = {
      seatId: seat,
      expectedOwnerId: seller.userId,
      newOwnerId: buyer.userId,
      key: `transfer:${id}:owner`,
    };
    for (const port of [ADAPTERS.local(app), ADAPTERS.http(app)]) {
      const answer = await port.setOwner(lateMove);
      t.is(answer.ownerUserId, buyer.userId, 'it answers the first move');
      t.like(await seatRow(app, seat), { owner_user_id: seller.userId }, 'and the seat stays the seller’s');
    }
    await expectBalances(t, seller, 42000, 0, 'nothing moved either');
    await expectBalances(t, buyer, 50000, 0, 'nothing moved either');
  });

  test(name('one seat of a multi-seat order changes hands on its own, and each is scanned on its own'), async (t) => {
    const event = await smallEvent(app, admin);
    const [seller, buyer] = [await fan(), await fan()];
    const [kept, sold] = [seatOf(event, 'B2'), seatOf(event, 'B3')];
    const order = await bought(app, seller, [kept, sold]);
    const deal = { seat: sold, seller, buyer, credits: 70 };
    const id = await initiated(app, deal);
    t.is((await confirm(app, buyer, id, await codesOf(otp, id, deal))).status, 200);
    t.like((await transferOf(app, buyer, id)).body.data, { order_id: order.order_id });
    t.deepEqual(
      (await ticketsOf(seller)).map((x) => x.seat_id),
      [kept],
    );
    t.deepEqual(
      (await ticketsOf(buyer)).map((x) => [x.seat_id, x.acquired_via]),
      [[sold, 'TRANSFER']],
    );
    const staff = await newStaff(app, admin);
    for (const [who, seat] of [
      [seller, kept],
      [buyer, sold],
    ] as const) {
      const qr = (await app.request('GET', `/api/tickets/${seat}/qr`, { token: who.token })).body.data.qr_payload;
      const scan = await app.request('POST', '/api/verify', {
        token: staff.token,
        body: { qr_payload: qr, hall_id: event.hallId },
      });
      t.like(scan.body.data, { result: 'SUCCESS', seat_id: seat });
    }
    // The order is still the seller's, confirmed, for both seats.
    const mine = await app.request('GET', `/api/orders/${order.order_id}`, { token: seller.token });
    t.like(mine.body.data, { status: 'CONFIRMED', seat_ids: [kept, sold] });
  });
}
