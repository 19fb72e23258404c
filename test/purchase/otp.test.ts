import { randomUUID } from 'node:crypto';
import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { startApp, TARGETS } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import { type CreatedEvent, createEvent, seatRow } from '../helpers/events.js';
import { sharedAppWithOtp } from '../helpers/otp-catcher.js';
import { balanceOf, cents, checkInvariants, flag, held, pay, refused } from '../helpers/purchase.js';
import { grant, newUser, type TestUser } from '../helpers/users.js';

/**
 * A flagged user's purchase: pay asks for a one-time code, which reaches the OTP webhook; the
 * code, verified at /api/verify-otp, lets the pay through. Wrong, late and foreign codes, the
 * budget of three wrong codes (which ends the order FAILED) and the rate limit per address.
 * One app per database, on a clock that the serial test moves past the code's TTL.
 */

const OTP_TTL = 30;
const ENV = { OTP_TTL_SECONDS: String(OTP_TTL), HOLD_TTL_SECONDS: '600', SWEEP_INTERVAL_MS: '3600000' };
const PHONE = '+6598765432';

const wrongFor = (code: string) => (code === '000000' ? '111111' : '000000');

for (const kind of TARGETS) {
  const clock = manualClock();
  const { app, admin, otp } = sharedAppWithOtp(kind, ENV, clock);
  const name = (s: string) => `[${kind}] ${s}`;
  let granted = 0;

  /** A flagged customer with 500 credits, holding both seats of a fresh two-seat event (80 each). */
  async function flaggedWithOrder() {
    const user = await newUser(app, { phone: PHONE });
    await grant(app, admin, user.userId, 500);
    granted += cents(500);
    await flag(app, admin, user.userId);
    const event = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 2, category: 'CAT2' }] });
    const seats = event.seats.map((s) => s.seat_id);
    const order = await held(app, user, seats);
    return { user, event, seats, orderId: order.order_id as string };
  }

  const verify = (user: TestUser, referenceId: string, code: string) =>
    app.request('POST', '/api/verify-otp', {
      token: user.token,
      body: { otp_code: code, context: 'purchase', reference_id: referenceId },
    });
  const orderOf = async (user: TestUser, orderId: string) =>
    (await app.request('GET', `/api/orders/${orderId}`, { token: user.token })).body.data;
  const scope = (event: CreatedEvent, ...users: TestUser[]) => ({
    events: [event.eventId],
    users: users.map((u) => u.userId),
  });

  test.after(name('every invariant holds once every test has run'), async (t) => {
    await checkInvariants(t, app, { granted });
  });

  test.serial(
    name('a code past OTP_TTL_SECONDS answers 410 OTP_EXPIRED; the next pay sends a fresh one, which works'),
    async (t) => {
      const { user, event, orderId } = await flaggedWithOrder();
      isError(t, await pay(app, user, orderId), 428, 'OTP_REQUIRED');
      const late = await otp.code(orderId);
      clock.advance(OTP_TTL * 1000 + 1000);
      await refused(t, app, scope(event, user), () => verify(user, orderId, late), 410, 'OTP_EXPIRED');
      isError(t, await pay(app, user, orderId), 428, 'OTP_REQUIRED');

      const sent = await otp.sent(orderId);
      t.is(sent.length, 2, 'a second code went out');
      const fresh = sent[1].code;
      const ok = await verify(user, orderId, fresh);
      t.is(ok.status, 200, JSON.stringify(ok.body));
      t.is((await pay(app, user, orderId)).status, 200);
      t.is(await balanceOf(app, user), 34_000);
    },
  );

  test(
    name(
      'a flagged user gets 428 OTP_REQUIRED and a code at the webhook; a wrong code is 401; the right one lets pay through',
    ),
    async (t) => {
      const { user, event, seats, orderId } = await flaggedWithOrder();
      const s = scope(event, user);
      await refused(t, app, s, () => pay(app, user, orderId), 428, 'OTP_REQUIRED');
      const [delivery, ...more] = await otp.sent(orderId);
      t.deepEqual(more, [], 'one code');
      t.like(delivery, { user_id: user.userId, phone: PHONE, purpose: 'purchase', reference_id: orderId });
      t.regex(delivery.code, /^\d{6}$/);
      t.true(Math.abs(Date.parse(delivery.expires_at) - (clock.now() + OTP_TTL * 1000)) < 10_000, delivery.expires_at);
      for (const seat of seats) t.like(await seatRow(app, seat), { status: 'HELD', hold_order_id: orderId });

      await refused(t, app, s, () => verify(user, orderId, wrongFor(delivery.code)), 401, 'OTP_INVALID');
      const ok = await verify(user, orderId, delivery.code);
      t.is(ok.status, 200, JSON.stringify(ok.body));
      t.is(ok.body.data.verified, true);
      t.is(typeof ok.body.data.message, 'string');
      t.like(await orderOf(user, orderId), { status: 'PENDING' }, 'verifying alone buys nothing');
      t.is(await balanceOf(app, user), 50_000);

      const paid = await pay(app, user, orderId);
      t.is(paid.status, 200, JSON.stringify(paid.body));
      t.like(paid.body.data, { status: 'CONFIRMED', credits_charged: 160, remaining_balance: 340 });
      for (const seat of seats) t.like(await seatRow(app, seat), { status: 'SOLD', owner_user_id: user.userId });
      t.is((await otp.sent(orderId)).length, 1, 'no second code once verified');
    },
  );

  test(
    name('the third wrong code is 429 OTP_MAX_RETRIES: the order FAILED, its seats AVAILABLE, pay 409 SEAT_NOT_HELD'),
    async (t) => {
      const { user, event, seats, orderId } = await flaggedWithOrder();
      isError(t, await pay(app, user, orderId), 428, 'OTP_REQUIRED');
      const code = await otp.code(orderId);
      isError(t, await verify(user, orderId, wrongFor(code)), 401, 'OTP_INVALID');
      isError(t, await verify(user, orderId, wrongFor(code)), 401, 'OTP_INVALID');
      isError(t, await verify(user, orderId, wrongFor(code)), 429, 'OTP_MAX_RETRIES');

      t.like(await orderOf(user, orderId), { status: 'FAILED', credits_charged: 0 });
      for (const seat of seats) {
        t.like(await seatRow(app, seat), { status: 'AVAILABLE', hold_order_id: null, held_by_user_id: null });
      }
      const s = scope(event, user);
      await refused(t, app, s, () => verify(user, orderId, code), 429, 'OTP_MAX_RETRIES');
      await refused(t, app, s, () => pay(app, user, orderId), 409, 'SEAT_NOT_HELD');
      t.is(await balanceOf(app, user), 50_000);

      const next = await newUser(app);
      t.is((await held(app, next, seats)).status, 'HELD', 'the released seats can be held again');
    },
  );

  test(
    name("verify-otp on someone else's order, or an unknown one, is 404 ORDER_NOT_FOUND and spends none of the budget"),
    async (t) => {
      const { user, event, orderId } = await flaggedWithOrder();
      isError(t, await pay(app, user, orderId), 428, 'OTP_REQUIRED');
      const code = await otp.code(orderId);
      const stranger = await newUser(app);
      const s = scope(event, user, stranger);
      for (let i = 0; i < 3; i++) {
        await refused(t, app, s, () => verify(stranger, orderId, wrongFor(code)), 404, 'ORDER_NOT_FOUND');
      }
      await refused(t, app, s, () => verify(stranger, orderId, code), 404, 'ORDER_NOT_FOUND');
      await refused(t, app, s, () => verify(user, randomUUID(), code), 404, 'ORDER_NOT_FOUND');

      t.like(await orderOf(user, orderId), { status: 'PENDING' });
      t.is((await verify(user, orderId, code)).status, 200, "the owner's budget is untouched");
      t.is((await pay(app, user, orderId)).status, 200);
    },
  );

  test(
    name('/api/verify-otp answers 429 RATE_LIMITED past RATE_LIMIT_PER_MINUTE from one address, not from another'),
    async (t) => {
      const limited = await startApp(kind, { RATE_LIMIT_PER_MINUTE: '3', TRUST_PROXY: 'true' });
      t.teardown(() => limited.close());
      const user = await newUser(limited);
      const from = (address: string) =>
        limited.request('POST', '/api/verify-otp', {
          token: user.token,
          headers: { 'x-forwarded-for': address },
          body: { otp_code: '123456', context: 'purchase', reference_id: randomUUID() },
        });
      for (let i = 0; i < 3; i++) isError(t, await from('203.0.113.7'), 404, 'ORDER_NOT_FOUND');
      const blocked = await from('203.0.113.7');
      isError(t, blocked, 429, 'RATE_LIMITED');
      t.truthy(blocked.headers.get('retry-after'));
      isError(t, await from('198.51.100.9'), 404, 'ORDER_NOT_FOUND');
    },
  );
}
