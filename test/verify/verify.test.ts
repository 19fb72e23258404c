import { createCipheriv, randomBytes, randomUUID } from 'node:crypto';
import test from 'ava';
import { TARGETS, type TestApp } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import { type CreatedEvent, scansOf, smallEvent } from '../helpers/events.js';
import { bought, cents, checkInvariants, held } from '../helpers/purchase.js';
import { grant, newUser, sharedAppWithAdmin, type TestUser } from '../helpers/users.js';

/**
 * POST /api/verify: every verdict provoked for real, in the order of its rules, each
 * scan logged with the staff member; four gates at once check a ticket in once. QR codes come from
 * the endpoint, or are sealed here with the app's key where the endpoint would refuse to make one
 * (a held seat, an unknown seat, a stale or someone else's code).
 */

const KEY = randomBytes(32);
const VIEW_KEYS = ['message', 'owner_name', 'result', 'row_number', 'scanned_at', 'seat_id', 'seat_number'];

/** A QR payload as the orchestrator makes them: base64(iv ‖ AES-256-GCM ciphertext ‖ tag). */
function seal(payload: object, key = KEY) {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64');
}
const wholeSecond = (ms: number) => new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');

async function staffOf(app: TestApp, admin: TestUser, role = 'staff') {
  const staff = await newUser(app, { full_name: 'Gate Keeper' });
  const res = await app.request('PATCH', `/api/admin/users/${staff.userId}`, { token: admin.token, body: { role } });
  if (res.status !== 200) throw new Error(`make ${role}: ${res.status} ${JSON.stringify(res.body)}`);
  return staff;
}

for (const kind of TARGETS) {
  const { app, admin } = sharedAppWithAdmin(kind, { QR_ENCRYPTION_KEY: KEY.toString('hex') });
  const name = (s: string) => `[${kind}] ${s}`;
  let granted = 0;

  async function fan(credits = 500): Promise<TestUser> {
    const user = await newUser(app, { full_name: `Fan ${randomUUID().slice(0, 6)}` });
    await grant(app, admin, user.userId, credits);
    granted += cents(credits);
    return user;
  }
  const seatOf = (e: CreatedEvent, label: string) =>
    e.seats.find((s) => `${s.row_number}${s.seat_number}` === label)!.seat_id;
  const qrOf = async (user: TestUser, seatId: string) => {
    const res = await app.request('GET', `/api/tickets/${seatId}/qr`, { token: user.token });
    if (res.status !== 200) throw new Error(`qr: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.data.qr_payload as string;
  };
  const verify = (staff: TestUser, body: unknown) => app.request('POST', '/api/verify', { token: staff.token, body });
  const sealed = (seatId: string, userId: string, hallId: string, at = Date.now()) =>
    seal({ seat_id: seatId, user_id: userId, hall_id: hallId, generated_at: wholeSecond(at) });

  test.after(name('every invariant holds once every test has run'), async (t) => {
    await checkInvariants(t, app, { granted });
  });

  test(name('SUCCESS checks the seat in; the next scan is DUPLICATE and says when; both are logged'), async (t) => {
    const e = await smallEvent(app, admin);
    const [me, staff] = [await fan(), await staffOf(app, admin)];
    const seat = seatOf(e, 'B2');
    await bought(app, me, seat);
    const payload = await qrOf(me, seat);

    const first = await verify(staff, { qr_payload: payload, hall_id: e.hallId });
    t.is(first.status, 200, JSON.stringify(first.body));
    t.deepEqual(Object.keys(first.body.data).sort(), VIEW_KEYS);
    const profile = (await app.request('GET', '/api/users/me', { token: me.token })).body.data;
    t.like(first.body.data, { result: 'SUCCESS', seat_id: seat, row_number: 'B', seat_number: 2 });
    t.is(first.body.data.owner_name, profile.full_name);
    t.regex(first.body.data.message, /row B, seat 2/);
    const ticket = (await app.request('GET', '/api/tickets', { token: me.token })).body.data[0];
    t.like(ticket, { seat_id: seat, status: 'CHECKED_IN' });

    const again = await verify(staff, { qr_payload: payload, hall_id: e.hallId });
    t.like(again.body.data, { result: 'DUPLICATE', seat_id: seat });
    t.regex(again.body.data.message, /checked in at \d{4}-\d\d-\d\dT/);
    t.deepEqual((await scansOf(app, seat)).map((s) => [s.result, s.staff_user_id, s.presented_hall]).sort(), [
      ['DUPLICATE', staff.userId, e.hallId],
      ['SUCCESS', staff.userId, e.hallId],
    ]);
  });

  test(name('WRONG_HALL names the right hall and checks nothing in; at the right gate it is SUCCESS'), async (t) => {
    const e = await smallEvent(app, admin);
    const [me, staff] = [await fan(), await staffOf(app, admin, 'admin')];
    const seat = seatOf(e, 'A3');
    await bought(app, me, seat);
    const payload = await qrOf(me, seat);
    const wrong = await verify(staff, { qr_payload: payload, hall_id: 'HALL-ELSEWHERE' });
    t.like(wrong.body.data, { result: 'WRONG_HALL', seat_id: seat });
    t.true(wrong.body.data.message.includes(e.hallId), wrong.body.data.message);
    t.like((await app.request('GET', '/api/tickets', { token: me.token })).body.data[0], { status: 'SOLD' });
    t.like((await verify(staff, { qr_payload: payload, hall_id: e.hallId })).body.data, { result: 'SUCCESS' });
    t.deepEqual((await scansOf(app, seat)).map((s) => [s.result, s.presented_hall, s.expected_hall]).sort(), [
      ['SUCCESS', e.hallId, e.hallId],
      ['WRONG_HALL', 'HALL-ELSEWHERE', e.hallId],
    ]);
  });

  test(
    name('UNPAID for a held or a free seat, NOT_FOUND for an unknown one, NOT_OWNER for a code not the owner’s'),
    async (t) => {
      const e = await smallEvent(app, admin);
      const [owner, other, staff] = [await fan(), await fan(), await staffOf(app, admin)];
      const heldSeat = seatOf(e, 'A1');
      await held(app, owner, heldSeat);
      const freeSeat = seatOf(e, 'A2');
      const sold = seatOf(e, 'B1');
      await bought(app, owner, sold);
      const unknown = randomUUID();

      const verdict = async (seatId: string, userId: string) =>
        (await verify(staff, { qr_payload: sealed(seatId, userId, e.hallId), hall_id: e.hallId })).body.data;
      t.like(await verdict(heldSeat, owner.userId), { result: 'UNPAID', seat_id: heldSeat });
      t.like(await verdict(freeSeat, owner.userId), { result: 'UNPAID', seat_id: freeSeat });
      const none = await verdict(unknown, owner.userId);
      t.is(none.result, 'NOT_FOUND');
      t.false('seat_id' in none || 'row_number' in none || 'owner_name' in none, JSON.stringify(none));
      const theirs = await verdict(sold, other.userId);
      t.like(theirs, { result: 'NOT_OWNER', seat_id: sold });
      t.false('owner_name' in theirs, 'the staff are not told whose ticket it really is');
      t.like((await app.request('GET', '/api/tickets', { token: owner.token })).body.data[0], { status: 'SOLD' });
      for (const [seatId, result] of [
        [heldSeat, 'UNPAID'],
        [freeSeat, 'UNPAID'],
        [unknown, 'NOT_FOUND'],
        [sold, 'NOT_OWNER'],
      ]) {
        t.deepEqual(
          (await scansOf(app, seatId)).map((s) => [s.result, s.staff_user_id]),
          [[result, staff.userId]],
        );
      }
    },
  );

  test(
    name('a code older than QR_TTL_SECONDS (or dated a TTL ahead) is EXPIRED, logged, and checks nothing in'),
    async (t) => {
      const e = await smallEvent(app, admin);
      const [me, staff] = [await fan(), await staffOf(app, admin)];
      const seat = seatOf(e, 'B1');
      await bought(app, me, seat);
      // Five seconds clear of the 60 s TTL either way, so that a slow request cannot bring a code back inside it.
      for (const at of [Date.now() - 65_000, Date.now() + 65_000]) {
        const res = await verify(staff, { qr_payload: sealed(seat, me.userId, e.hallId, at), hall_id: e.hallId });
        t.like(res.body.data, { result: 'EXPIRED', seat_id: seat });
      }
      // The first rule decides: a stale code of a checked-in seat is EXPIRED, not DUPLICATE.
      t.like((await verify(staff, { qr_payload: await qrOf(me, seat), hall_id: e.hallId })).body.data, {
        result: 'SUCCESS',
      });
      const stale = await verify(staff, {
        qr_payload: sealed(seat, me.userId, e.hallId, Date.now() - 120_000),
        hall_id: e.hallId,
      });
      t.is(stale.body.data.result, 'EXPIRED');
      t.deepEqual((await scansOf(app, seat)).map((s) => s.result).sort(), ['EXPIRED', 'EXPIRED', 'EXPIRED', 'SUCCESS']);
    },
  );

  test(name('a payload that does not decrypt is 400 QR_INVALID and logs nothing'), async (t) => {
    const e = await smallEvent(app, admin);
    const [me, staff] = [await fan(), await staffOf(app, admin)];
    const seat = seatOf(e, 'B3');
    await bought(app, me, seat);
    const good = Buffer.from(await qrOf(me, seat), 'base64');
    const flip = (i: number) => {
      const raw = Buffer.from(good);
      raw[i] ^= 0x01;
      return raw.toString('base64');
    };
    for (const qr_payload of [
      flip(0), // the IV
      flip(20), // the ciphertext
      flip(good.length - 1), // the tag
      sealed(seat, me.userId, e.hallId).replace(/^./, (c) => (c === 'A' ? 'B' : 'A')),
      seal(
        { seat_id: seat, user_id: me.userId, hall_id: e.hallId, generated_at: wholeSecond(Date.now()) },
        randomBytes(32),
      ),
      seal({ seat_id: seat, user_id: me.userId }), // ours, but not a QR payload
      'not base64 at all!',
      'AAAA',
    ]) {
      isError(t, await verify(staff, { qr_payload, hall_id: e.hallId }), 400, 'QR_INVALID');
    }
    t.deepEqual(await scansOf(app, seat), []);
    t.like((await app.request('GET', '/api/tickets', { token: me.token })).body.data[0], { status: 'SOLD' });
  });

  test(name('only staff and admins verify; bodies are checked'), async (t) => {
    const e = await smallEvent(app, admin);
    const me = await fan();
    const seat = seatOf(e, 'A2');
    await bought(app, me, seat);
    const payload = await qrOf(me, seat);
    isError(t, await verify(me, { qr_payload: payload, hall_id: e.hallId }), 403, 'FORBIDDEN');
    isError(
      t,
      await app.request('POST', '/api/verify', { body: { qr_payload: payload, hall_id: e.hallId } }),
      401,
      'UNAUTHORIZED',
    );
    const staff = await staffOf(app, admin);
    for (const body of [
      {},
      { qr_payload: payload },
      { hall_id: e.hallId },
      { qr_payload: payload, hall_id: '' },
      { qr_payload: 'x'.repeat(5000), hall_id: 'A' },
      { qr_payload: payload, hall_id: e.hallId, extra: 1 },
      { qr_payload: payload, hall_id: 'HALL\u0000A' },
    ]) {
      isError(t, await verify(staff, body), 400, 'VALIDATION_ERROR');
    }
    t.deepEqual(await scansOf(app, seat), []);
  });

  test(name('four gates scanning one ticket at once: one SUCCESS, three DUPLICATE, four scans logged'), async (t) => {
    const e = await smallEvent(app, admin);
    const me = await fan();
    const gates = await Promise.all([1, 2, 3, 4].map(() => staffOf(app, admin)));
    const seat = seatOf(e, 'B3');
    await bought(app, me, seat);
    const payload = await qrOf(me, seat);
    const answers = await Promise.all(gates.map((g) => verify(g, { qr_payload: payload, hall_id: e.hallId })));
    t.deepEqual(
      answers.map((a) => a.status),
      [200, 200, 200, 200],
    );
    t.deepEqual(answers.map((a) => a.body.data.result).sort(), ['DUPLICATE', 'DUPLICATE', 'DUPLICATE', 'SUCCESS']);
    const scans = await scansOf(app, seat);
    t.deepEqual(scans.map((s) => s.result).sort(), ['DUPLICATE', 'DUPLICATE', 'DUPLICATE', 'SUCCESS']);
    t.deepEqual(scans.map((s) => s.staff_user_id).sort(), gates.map((g) => g.userId).sort());
  });
}

for (const kind of TARGETS) {
  const { app, admin } = sharedAppWithAdmin(kind, { QR_ENCRYPTION_KEY: KEY.toString('hex'), QR_TTL_SECONDS: '1' });

  test(`[${kind}] with QR_TTL_SECONDS=1, a code from the endpoint is EXPIRED two seconds later`, async (t) => {
    const e = await smallEvent(app, admin);
    const me = await newUser(app);
    await grant(app, admin, me.userId, 500);
    const seat = e.seats[0].seat_id;
    await bought(app, me, seat);
    const staff = await staffOf(app, admin);
    const res = await app.request('GET', `/api/tickets/${seat}/qr`, { token: me.token });
    t.is(res.body.data.ttl_seconds, 1);
    await new Promise((r) => setTimeout(r, 2100));
    const scan = await app.request('POST', '/api/verify', {
      token: staff.token,
      body: { qr_payload: res.body.data.qr_payload, hall_id: e.hallId },
    });
    t.like(scan.body.data, { result: 'EXPIRED', seat_id: seat });
    t.regex(scan.body.data.message, /expired/);
  });
}
