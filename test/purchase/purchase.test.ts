import { randomUUID } from 'node:crypto';
import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { type Response, TARGETS } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import { type CreatedEvent, createEvent, moveIntoPast, seatRow, smallEvent } from '../helpers/events.js';
import { sharedAppWithOtp } from '../helpers/otp-catcher.js';
import {
  balanceOf,
  bought,
  cents,
  checkInvariants,
  flag,
  held,
  ledgerOf,
  orderState,
  pay,
  refused,
  reserve,
} from '../helpers/purchase.js';
import { grant, newUser, type TestUser } from '../helpers/users.js';

/**
 * The purchase scenario over HTTP: reserve one seat or several, pay, and every refusal of §7
 * provoked for real, each shown to hold, order and charge nothing. One app per database on a
 * clock the serial tests move past the hold TTL; the sweepers wait an hour unless a test runs
 * them, so that what happens before a sweep can be seen. Invariants are checked over the whole
 * database once every test has run.
 */

const HOLD_TTL = 60;
const ENV = {
  HOLD_TTL_SECONDS: String(HOLD_TTL),
  MAX_SEATS_PER_ORDER: '4',
  MAX_HELD_SEATS_PER_USER: '5',
  SWEEP_INTERVAL_MS: '3600000',
};

const RESERVE_KEYS = [
  'event_id',
  'held_until',
  'message',
  'order_id',
  'price',
  'seat_id',
  'seat_ids',
  'seats',
  'status',
  'ttl_seconds',
];
const PAY_KEYS = ['credits_charged', 'message', 'order_id', 'remaining_balance', 'seat_id', 'seat_ids', 'status'];
const ISO_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The detail fields of a refusal. */
const fieldsOf = (res: Response) => (res.body.details ?? []).map((d: { field: string }) => d.field).sort();

/** A validation detail that names the seat list or one of its items (`seat_ids`, `seat_ids[2]`, `seat_ids.2`). */
const SEAT_LIST_FIELD = /^seat_ids(\[\d+\]|\.\d+)?$/;

for (const kind of TARGETS) {
  const clock = manualClock();
  const { app, admin, otp } = sharedAppWithOtp(kind, ENV, clock);
  const name = (s: string) => `[${kind}] ${s}`;
  /** Credits granted in this file, in cents: what balances plus charges must add up to at the end. */
  let granted = 0;

  async function customer(credits = 0): Promise<TestUser> {
    const user = await newUser(app);
    if (credits) {
      await grant(app, admin, user.userId, credits);
      granted += cents(credits);
    }
    return user;
  }

  const order = (user: TestUser, orderId: string) =>
    app.request('GET', `/api/orders/${orderId}`, { token: user.token });
  const ids = (e: CreatedEvent, ...labels: string[]) =>
    labels.map((l) => e.seats.find((s) => `${s.row_number}${s.seat_number}` === l)!.seat_id);
  const scope = (events: CreatedEvent[], users: (TestUser | string)[]) => ({
    events: events.map((e) => e.eventId),
    users: users.map((u) => (typeof u === 'string' ? u : u.userId)),
  });
  const purchases = async (userId: string) => (await ledgerOf(app, userId)).filter((e) => e.type === 'PURCHASE');

  test.after(name('every invariant holds once every test has run'), async (t) => {
    await checkInvariants(t, app, { granted });
  });

  test.serial(
    name('pay after the hold ended answers 410 HOLD_EXPIRED before and after the sweep, and charges nothing'),
    async (t) => {
      const e = await smallEvent(app, admin);
      const user = await customer(1000);
      const [a1, a2] = ids(e, 'A1', 'A2');
      const first = await held(app, user, a1);
      const second = await held(app, user, a2);
      clock.advance(HOLD_TTL * 1000 + 1000);

      // Not swept yet: the rows still say HELD, and the order may still say PENDING.
      t.like(await seatRow(app, a1), { status: 'HELD', hold_order_id: first.order_id });
      isError(t, await pay(app, user, first.order_id), 410, 'HOLD_EXPIRED');
      t.like(await seatRow(app, a1), { sold_order_id: null, owner_user_id: null });
      t.not((await order(user, first.order_id)).body.data.status, 'CONFIRMED');

      await app.kernel.jobs.run('event', 'hold-sweeper');
      await app.kernel.jobs.run('order', 'order-sweeper');
      for (const o of [first, second]) {
        t.like((await order(user, o.order_id)).body.data, {
          status: 'EXPIRED',
          credits_charged: 0,
          confirmed_at: null,
        });
        isError(t, await pay(app, user, o.order_id), 410, 'HOLD_EXPIRED');
      }
      t.like(await seatRow(app, a1), { status: 'AVAILABLE', hold_order_id: null, owner_user_id: null });
      t.like(await seatRow(app, a2), { status: 'AVAILABLE', hold_order_id: null });
      t.is(await balanceOf(app, user), 100_000);
      t.deepEqual(await purchases(user.userId), []);

      // The seat is free again, for its former holder as for anyone.
      const other = await customer(200);
      const again = await bought(app, other, a1);
      t.is(again.status, 'CONFIRMED');
      t.not(again.order_id, first.order_id);
      await checkInvariants(t, app, { granted });
    },
  );

  test(
    name('one seat: reserved HELD for its TTL, paid CONFIRMED, the price charged, the seat SOLD to the buyer'),
    async (t) => {
      const e = await smallEvent(app, admin);
      const user = await customer(500);
      const [a1] = ids(e, 'A1');

      const res = await reserve(app, user, a1);
      t.is(res.status, 200, JSON.stringify(res.body));
      const r = res.body.data;
      t.deepEqual(Object.keys(r).sort(), RESERVE_KEYS);
      t.regex(r.order_id, UUID);
      t.like(r, {
        seat_id: a1,
        seat_ids: [a1],
        event_id: e.eventId,
        status: 'HELD',
        price: 149.5,
        ttl_seconds: HOLD_TTL,
      });
      t.deepEqual(r.seats, [{ seat_id: a1, row_number: 'A', seat_number: 1, category: 'CAT1', price: 149.5 }]);
      t.regex(r.held_until, ISO_Z);
      t.true(Math.abs(Date.parse(r.held_until) - (clock.now() + HOLD_TTL * 1000)) < 10_000, r.held_until);
      t.is(typeof r.message, 'string');
      t.like(await seatRow(app, a1), {
        status: 'HELD',
        held_by_user_id: user.userId,
        hold_order_id: r.order_id,
        owner_user_id: null,
      });
      const pending = await order(user, r.order_id);
      t.is(pending.status, 200, JSON.stringify(pending.body));
      t.like(pending.body.data, {
        order_id: r.order_id,
        seat_id: a1,
        seat_ids: [a1],
        event_id: e.eventId,
        status: 'PENDING',
        credits_charged: 0,
        confirmed_at: null,
      });

      const paid = await pay(app, user, r.order_id);
      t.is(paid.status, 200, JSON.stringify(paid.body));
      t.deepEqual(Object.keys(paid.body.data).sort(), PAY_KEYS);
      t.like(paid.body.data, {
        order_id: r.order_id,
        seat_id: a1,
        seat_ids: [a1],
        status: 'CONFIRMED',
        credits_charged: 149.5,
        remaining_balance: 350.5,
      });
      const confirmed = (await order(user, r.order_id)).body.data;
      t.like(confirmed, { status: 'CONFIRMED', credits_charged: 149.5 });
      t.regex(confirmed.confirmed_at, ISO_Z);
      t.is(await balanceOf(app, user), 35_050);
      t.like(await seatRow(app, a1), {
        status: 'SOLD',
        owner_user_id: user.userId,
        sold_order_id: r.order_id,
        price_paid: 14_950,
        hold_order_id: null,
      });
      t.deepEqual(
        (await purchases(user.userId)).map((p) => p.amount),
        [-14_950],
      );
      t.like((await orderState(app, r.order_id))!, { status: 'CONFIRMED', total: 14_950, user_id: user.userId });
    },
  );

  test(
    name('three seats: one order holds all three at the sum of their prices, and pays into three tickets'),
    async (t) => {
      const e = await smallEvent(app, admin);
      const user = await customer(400);
      const seats = ids(e, 'B2', 'A1', 'B1');

      const r = await held(app, user, seats);
      t.like(r, { seat_id: seats[0], seat_ids: seats, event_id: e.eventId, status: 'HELD', price: 309.5 });
      t.deepEqual(
        r.seats.map((s: { seat_id: string; price: number }) => [s.seat_id, s.price]),
        [
          [seats[0], 80],
          [seats[1], 149.5],
          [seats[2], 80],
        ],
      );
      for (const s of seats) t.like(await seatRow(app, s), { status: 'HELD', hold_order_id: r.order_id });
      t.like((await order(user, r.order_id)).body.data, { seat_id: seats[0], seat_ids: seats, status: 'PENDING' });

      const paid = await pay(app, user, r.order_id);
      t.is(paid.status, 200, JSON.stringify(paid.body));
      t.like(paid.body.data, { seat_ids: seats, credits_charged: 309.5, remaining_balance: 90.5 });
      t.deepEqual(
        (await purchases(user.userId)).map((p) => p.amount),
        [-30_950],
        'one charge for the whole order',
      );
      for (const s of seats) {
        t.like(await seatRow(app, s), { status: 'SOLD', owner_user_id: user.userId, sold_order_id: r.order_id });
      }
      const tickets = (await app.request('GET', '/api/tickets', { token: user.token })).body.data;
      t.deepEqual(
        tickets
          .map((k: { seat_id: string; order_id: string; price_paid: number }) => [k.seat_id, k.order_id, k.price_paid])
          .sort(),
        [
          [seats[0], r.order_id, 80],
          [seats[1], r.order_id, 149.5],
          [seats[2], r.order_id, 80],
        ].sort(),
      );
    },
  );

  test(
    name('repeating a reserve of exactly the seats of my live order answers that order; a part or more is unavailable'),
    async (t) => {
      const e = await smallEvent(app, admin);
      const user = await customer();
      const [a1, a2, a3] = ids(e, 'A1', 'A2', 'A3');
      const first = await held(app, user, [a1, a2]);
      const again = await held(app, user, [a1, a2]);
      t.is(again.order_id, first.order_id);
      t.like(again, { seat_ids: [a1, a2], price: 299, held_until: first.held_until });

      const s = scope([e], [user]);
      const part = await refused(t, app, s, () => reserve(app, user, a1), 409, 'SEAT_UNAVAILABLE');
      t.truthy(part.body.details?.length, JSON.stringify(part.body));
      const more = await refused(t, app, s, () => reserve(app, user, [a1, a2, a3]), 409, 'SEAT_UNAVAILABLE');
      t.deepEqual(fieldsOf(more), ['seat_ids[0]', 'seat_ids[1]']);
      t.like(await seatRow(app, a3), { status: 'AVAILABLE' });
    },
  );

  test(name('SEAT_NOT_FOUND: an unknown seat among others holds nothing, and the details name it'), async (t) => {
    const e = await smallEvent(app, admin);
    const user = await customer();
    const [a1, a2] = ids(e, 'A1', 'A2');
    const s = scope([e], [user]);
    const res = await refused(t, app, s, () => reserve(app, user, [a1, randomUUID(), a2]), 404, 'SEAT_NOT_FOUND');
    t.deepEqual(fieldsOf(res), ['seat_ids[1]']);
    await refused(t, app, s, () => reserve(app, user, randomUUID()), 404, 'SEAT_NOT_FOUND');
  });

  test(
    name('SEAT_UNAVAILABLE and SEAT_ALREADY_SOLD name each refused seat, the first that applies decides the code'),
    async (t) => {
      const e = await smallEvent(app, admin);
      const [holder, buyer, me] = [await customer(), await customer(200), await customer()];
      const [a1, a2, a3, b1] = ids(e, 'A1', 'A2', 'A3', 'B1');
      await held(app, holder, a1);
      await bought(app, buyer, a2);
      const s = scope([e], [holder, buyer, me]);

      const unavailable = await refused(t, app, s, () => reserve(app, me, [a3, a1]), 409, 'SEAT_UNAVAILABLE');
      t.deepEqual(fieldsOf(unavailable), ['seat_ids[1]']);
      await refused(t, app, s, () => reserve(app, me, a1), 409, 'SEAT_UNAVAILABLE');
      await refused(t, app, s, () => reserve(app, me, a2), 409, 'SEAT_ALREADY_SOLD');
      const sold = await refused(t, app, s, () => reserve(app, me, [a1, b1, a2]), 409, 'SEAT_ALREADY_SOLD');
      t.deepEqual(fieldsOf(sold), ['seat_ids[0]', 'seat_ids[2]']);
      const unknown = await refused(t, app, s, () => reserve(app, me, [a2, a1, randomUUID()]), 404, 'SEAT_NOT_FOUND');
      t.deepEqual(fieldsOf(unknown), ['seat_ids[0]', 'seat_ids[1]', 'seat_ids[2]']);
      t.like(await seatRow(app, a3), { status: 'AVAILABLE' });
      t.like(await seatRow(app, b1), { status: 'AVAILABLE' });
    },
  );

  test(name('EVENT_ENDED: a seat of an event whose date has passed is not held'), async (t) => {
    const e = await smallEvent(app, admin);
    const user = await customer();
    await moveIntoPast(app, e.eventId);
    const [a1, a2] = ids(e, 'A1', 'A2');
    const s = scope([e], [user]);
    const res = await refused(t, app, s, () => reserve(app, user, [a1, a2]), 410, 'EVENT_ENDED');
    t.deepEqual(fieldsOf(res), ['seat_ids[0]', 'seat_ids[1]']);
    await refused(t, app, s, () => reserve(app, user, [randomUUID(), a1]), 404, 'SEAT_NOT_FOUND');
  });

  test(
    name(
      'user_id: an admin reserves for a user (USER_NOT_FOUND for nobody); anyone else naming another user is FORBIDDEN',
    ),
    async (t) => {
      const e = await smallEvent(app, admin);
      const [alice, bob] = [await customer(), await customer()];
      const [a1, a2] = ids(e, 'A1', 'A2');
      const nobody = randomUUID();
      const s = scope([e], [alice, bob, admin, nobody]);

      await refused(t, app, s, () => reserve(app, alice, a1, { user_id: bob.userId }), 403, 'FORBIDDEN');
      await refused(t, app, s, () => reserve(app, admin, a1, { user_id: nobody }), 404, 'USER_NOT_FOUND');

      const mine = await reserve(app, alice, a1, { user_id: alice.userId });
      t.is(mine.status, 200, JSON.stringify(mine.body));
      const forBob = await reserve(app, admin, [a2], { user_id: bob.userId });
      t.is(forBob.status, 200, JSON.stringify(forBob.body));
      t.like(await seatRow(app, a2), { held_by_user_id: bob.userId, hold_order_id: forBob.body.data.order_id });
      t.like((await order(bob, forBob.body.data.order_id)).body.data, { status: 'PENDING' });
      t.is((await order(admin, forBob.body.data.order_id)).status, 404, "the admin's own orders only");
    },
  );

  test(name('HOLD_LIMIT_REACHED past MAX_HELD_SEATS_PER_USER live held seats; sold seats do not count'), async (t) => {
    const e = await smallEvent(app, admin);
    const user = await customer(1000);
    const [a1, a2, a3, b1, b2, b3] = ids(e, 'A1', 'A2', 'A3', 'B1', 'B2', 'B3');
    const three = await held(app, user, [a1, a2, a3]);
    await held(app, user, [b1, b2]);
    const s = scope([e], [user]);
    await refused(t, app, s, () => reserve(app, user, b3), 409, 'HOLD_LIMIT_REACHED');

    t.is((await pay(app, user, three.order_id)).status, 200);
    t.is((await reserve(app, user, b3)).status, 200, 'the three sold seats left the count');
  });

  test(
    name('seat_id / seat_ids: every malformed request is 400 VALIDATION_ERROR or INVALID_UUID and holds nothing'),
    async (t) => {
      const e = await smallEvent(app, admin);
      const other = await smallEvent(app, admin);
      const user = await customer();
      const [a1, a2] = ids(e, 'A1', 'A2');
      const [elsewhere] = ids(other, 'A1');
      const s = scope([e, other], [user]);
      const send = (body: unknown) => () => app.request('POST', '/api/reserve', { token: user.token, body });

      const invalid: [string, unknown][] = [
        ['both seat_id and seat_ids', { seat_id: a1, seat_ids: [a2] }],
        ['neither', {}],
        ['neither, only user_id', { user_id: user.userId }],
        ['an empty list', { seat_ids: [] }],
        ['a repeated seat', { seat_ids: [a1, a2, a1] }],
        ['more than MAX_SEATS_PER_ORDER', { seat_ids: [a1, a2, randomUUID(), randomUUID(), randomUUID()] }],
        ['seats of two events', { seat_ids: [a1, elsewhere] }],
        ['a number as seat_id', { seat_id: 42 }],
        ['null as seat_id', { seat_id: null }],
        ['a number in seat_ids', { seat_ids: [a1, 7] }],
        ['null in seat_ids', { seat_ids: [null] }],
        ['an object in seat_ids', { seat_ids: [{ seat_id: a1 }] }],
        ['seat_ids as a string', { seat_ids: a1 }],
        ['seat_ids as an object', { seat_ids: { 0: a1 } }],
        ['a list as seat_id', { seat_id: [a1] }],
        ['user_id as a number', { seat_id: a1, user_id: 5 }],
        ['an unknown field', { seat_id: a1, quantity: 2 }],
      ];
      for (const [what, body] of invalid) {
        const res = await refused(t, app, s, send(body), 400, 'VALIDATION_ERROR');
        t.true(res.body.details?.length > 0, `${what}: ${JSON.stringify(res.body)}`);
      }
      for (const [what, body] of [
        ['an empty list', { seat_ids: [] }],
        ['a repeated seat', { seat_ids: [a1, a2, a1] }],
        ['more than MAX_SEATS_PER_ORDER', { seat_ids: [a1, a2, randomUUID(), randomUUID(), randomUUID()] }],
        ['a number in seat_ids', { seat_ids: [a1, 7] }],
      ] as const) {
        const res = await send(body)();
        t.true(
          fieldsOf(res).some((f: string) => SEAT_LIST_FIELD.test(f)),
          `${what}: the details name seat_ids: ${JSON.stringify(res.body)}`,
        );
      }

      for (const body of [
        { seat_id: 'not-a-uuid' },
        { seat_ids: [a1, 'not-a-uuid'] },
        { seat_id: a1.replace(/-/g, '') },
        { seat_id: a1, user_id: 'nobody' },
      ]) {
        await refused(t, app, s, send(body), 400, 'INVALID_UUID');
      }
      await refused(t, app, s, () => pay(app, user, 'not-a-uuid'), 400, 'INVALID_UUID');
      await refused(
        t,
        app,
        s,
        () => app.request('POST', '/api/pay', { token: user.token, body: {} }),
        400,
        'VALIDATION_ERROR',
      );
      isError(t, await app.request('GET', '/api/orders/not-a-uuid', { token: user.token }), 400, 'INVALID_UUID');
    },
  );

  test(
    name("ORDER_NOT_FOUND for an unknown order and for someone else's; ORDER_ALREADY_CONFIRMED on a second pay"),
    async (t) => {
      const e = await smallEvent(app, admin);
      const [owner, stranger] = [await customer(300), await customer(300)];
      const [a1] = ids(e, 'A1');
      const r = await held(app, owner, a1);
      const s = scope([e], [owner, stranger]);

      await refused(t, app, s, () => pay(app, stranger, randomUUID()), 404, 'ORDER_NOT_FOUND');
      await refused(t, app, s, () => pay(app, stranger, r.order_id), 404, 'ORDER_NOT_FOUND');
      isError(t, await order(stranger, r.order_id), 404, 'ORDER_NOT_FOUND');
      isError(t, await order(owner, randomUUID()), 404, 'ORDER_NOT_FOUND');
      t.like(await seatRow(app, a1), { status: 'HELD', hold_order_id: r.order_id });

      t.is((await pay(app, owner, r.order_id)).status, 200);
      await refused(t, app, s, () => pay(app, owner, r.order_id), 409, 'ORDER_ALREADY_CONFIRMED');
      await refused(
        t,
        app,
        s,
        () => pay(app, owner, r.order_id, `again-${randomUUID()}`),
        409,
        'ORDER_ALREADY_CONFIRMED',
      );
      t.is((await purchases(owner.userId)).length, 1);
      t.is(await balanceOf(app, owner), 15_050);
      t.is(await balanceOf(app, stranger), 30_000);
    },
  );

  test(name('INSUFFICIENT_CREDITS keeps the seat held; after a grant the same order pays'), async (t) => {
    const e = await smallEvent(app, admin);
    const user = await customer(100);
    const [a1] = ids(e, 'A1');
    const r = await held(app, user, a1);
    const res = await refused(
      t,
      app,
      scope([e], [user]),
      () => pay(app, user, r.order_id),
      402,
      'INSUFFICIENT_CREDITS',
    );
    t.truthy(res.body.message);
    t.like(await seatRow(app, a1), { status: 'HELD', hold_order_id: r.order_id, held_by_user_id: user.userId });
    t.like((await order(user, r.order_id)).body.data, { status: 'PENDING' });

    await grant(app, admin, user.userId, 50);
    granted += cents(50);
    const paid = await pay(app, user, r.order_id);
    t.is(paid.status, 200, JSON.stringify(paid.body));
    t.like(paid.body.data, { credits_charged: 149.5, remaining_balance: 0.5 });
    t.is(await balanceOf(app, user), 50);
    t.like(await seatRow(app, a1), { status: 'SOLD', owner_user_id: user.userId });
  });

  test(
    name('Idempotency-Key: a repeat answers the first answer and charges once; the key on another order is 409'),
    async (t) => {
      const e = await smallEvent(app, admin);
      const user = await customer(500);
      const [a1, b1] = ids(e, 'A1', 'B1');
      const first = await held(app, user, a1);
      const second = await held(app, user, b1);
      const key = `pay-${randomUUID()}`;

      const answers = [await pay(app, user, first.order_id, key), await pay(app, user, first.order_id, key)];
      t.is(answers[0].status, 200, JSON.stringify(answers[0].body));
      t.is(answers[1].status, 200, JSON.stringify(answers[1].body));
      t.deepEqual(answers[1].body, answers[0].body);
      t.is((await purchases(user.userId)).length, 1);
      t.is(await balanceOf(app, user), 35_050);

      await refused(
        t,
        app,
        scope([e], [user]),
        () => pay(app, user, second.order_id, key),
        409,
        'IDEMPOTENCY_CONFLICT',
      );
      t.like(await seatRow(app, b1), { status: 'HELD', hold_order_id: second.order_id });
      t.is((await pay(app, user, second.order_id, `pay-${randomUUID()}`)).status, 200, 'a fresh key pays it');
      t.is(await balanceOf(app, user), 27_050);
    },
  );

  test(
    name('SEAT_NOT_HELD: a FAILED order (three wrong one-time codes) released its seats and cannot be paid'),
    async (t) => {
      const e = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 2, category: 'CAT2' }] });
      const user = await customer(300);
      await flag(app, admin, user.userId);
      const seats = ids(e, 'A1', 'A2');
      const r = await held(app, user, seats);
      isError(t, await pay(app, user, r.order_id), 428, 'OTP_REQUIRED');
      const code = await otp.code(r.order_id);
      const wrong = code === '000000' ? '111111' : '000000';
      const verify = () =>
        app.request('POST', '/api/verify-otp', {
          token: user.token,
          body: { otp_code: wrong, context: 'purchase', reference_id: r.order_id },
        });
      isError(t, await verify(), 401, 'OTP_INVALID');
      isError(t, await verify(), 401, 'OTP_INVALID');
      isError(t, await verify(), 429, 'OTP_MAX_RETRIES');
      t.like((await order(user, r.order_id)).body.data, { status: 'FAILED' });
      for (const s of seats) t.like(await seatRow(app, s), { status: 'AVAILABLE', hold_order_id: null });
      await refused(t, app, scope([e], [user]), () => pay(app, user, r.order_id), 409, 'SEAT_NOT_HELD');
      t.is(await balanceOf(app, user), 30_000);
    },
  );
}
