import { createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import test from 'ava';
import { TARGETS } from '../helpers/app.js';
import { isError } from '../helpers/assert.js';
import { type CreatedEvent, smallEvent } from '../helpers/events.js';
import { bought, cents, checkInvariants, held } from '../helpers/purchase.js';
import { grant, newUser, sharedAppWithAdmin, type TestUser } from '../helpers/users.js';

/**
 * Tickets: one per owned seat, with the event it is for, and a QR whose payload the test
 * decrypts itself with the key the app was given, as a door scanner of another vendor could.
 */

const KEY = randomBytes(32);
const TICKET_KEYS = [
  'acquired_via',
  'category',
  'event',
  'order_id',
  'price_paid',
  'purchased_at',
  'row_number',
  'seat_id',
  'seat_number',
  'status',
];
const EVENT_KEYS = ['event_date', 'event_id', 'hall_id', 'name', 'venue_name'];
const WHOLE_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const ISO_Z = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** base64(iv12 ‖ ciphertext ‖ tag16) under AES-256-GCM; throws when the tag does not verify. */
function decrypt(payload: string, key: Buffer = KEY) {
  const raw = Buffer.from(payload, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  const plain = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
  return JSON.parse(plain.toString('utf8'));
}

/** The payload with one bit of byte `at` flipped (negative counts from the end). */
function flipped(payload: string, at: number) {
  const raw = Buffer.from(payload, 'base64');
  const i = at < 0 ? raw.length + at : at;
  raw[i] ^= 0x01;
  return raw.toString('base64');
}

for (const kind of TARGETS) {
  const { app, admin } = sharedAppWithAdmin(kind, { QR_ENCRYPTION_KEY: KEY.toString('hex') });
  const name = (s: string) => `[${kind}] ${s}`;
  let granted = 0;

  async function customer(credits: number): Promise<TestUser> {
    const user = await newUser(app);
    await grant(app, admin, user.userId, credits);
    granted += cents(credits);
    return user;
  }
  const ids = (e: CreatedEvent, ...labels: string[]) =>
    labels.map((l) => e.seats.find((s) => `${s.row_number}${s.seat_number}` === l)!.seat_id);
  const tickets = (user: TestUser, query = '') => app.request('GET', `/api/tickets${query}`, { token: user.token });
  const qr = (user: TestUser, seatId: string, query = '') =>
    app.request('GET', `/api/tickets/${seatId}/qr${query}`, { token: user.token });

  test.after(name('every invariant holds once every test has run'), async (t) => {
    await checkInvariants(t, app, { granted });
  });

  test(
    name("GET /api/tickets lists one ticket per seat I own, with its event, order and price; nobody else's"),
    async (t) => {
      const [concert, other] = [await smallEvent(app, admin), await smallEvent(app, admin)];
      const [me, neighbour] = [await customer(1000), await customer(1000)];
      const group = ids(concert, 'A1', 'B1', 'B2');
      const three = await bought(app, me, group);
      const [single] = ids(other, 'A3');
      const one = await bought(app, me, single);
      await held(app, me, ids(other, 'B1'));
      await bought(app, neighbour, ids(concert, 'A2'));

      const res = await tickets(me);
      t.is(res.status, 200, JSON.stringify(res.body));
      t.deepEqual(res.body.pagination, { page: 1, per_page: 20, total: 4, total_pages: 1 });
      const list = res.body.data as Record<string, any>[];
      for (const k of list) {
        t.deepEqual(Object.keys(k).sort(), TICKET_KEYS);
        t.deepEqual(Object.keys(k.event).sort(), EVENT_KEYS);
        t.like(k, { status: 'SOLD', acquired_via: 'PURCHASE' });
        t.regex(k.purchased_at, ISO_Z);
        t.regex(k.event.event_date, ISO_Z);
      }
      const shown = (k: Record<string, any>) => [k.seat_id, k.order_id, k.event.event_id, k.row_number, k.seat_number];
      t.deepEqual(
        list.map(shown).sort(),
        [
          [group[0], three.order_id, concert.eventId, 'A', 1],
          [group[1], three.order_id, concert.eventId, 'B', 1],
          [group[2], three.order_id, concert.eventId, 'B', 2],
          [single, one.order_id, other.eventId, 'A', 3],
        ].sort(),
      );
      const bySeat = new Map(list.map((k) => [k.seat_id, k]));
      t.like(bySeat.get(group[0]), { category: 'CAT1', price_paid: 149.5 });
      t.like(bySeat.get(group[1]), { category: 'CAT2', price_paid: 80 });
      t.like(bySeat.get(single)!.event, { hall_id: other.hallId, event_id: other.eventId });
      t.is(typeof bySeat.get(single)!.event.venue_name, 'string');
      t.true(bySeat.get(single)!.event.venue_name.length > 0);

      const page = await tickets(me, '?per_page=3&page=2');
      t.is(page.status, 200);
      t.is(page.body.data.length, 1);
      t.deepEqual(page.body.pagination, { page: 2, per_page: 3, total: 4, total_pages: 2 });
      t.deepEqual((await tickets(me, '?page=9')).body.data, []);
      isError(t, await tickets(me, '?per_page=0'), 400, 'VALIDATION_ERROR');

      const theirs = (await tickets(neighbour)).body.data;
      t.deepEqual(
        theirs.map((k: { seat_id: string }) => k.seat_id),
        ids(concert, 'A2'),
      );
      t.deepEqual((await tickets(await newUser(app))).body.data, []);
    },
  );

  test(
    name('the QR payload decrypts with QR_ENCRYPTION_KEY to my seat, my id, the hall and a whole-second time'),
    async (t) => {
      const e = await smallEvent(app, admin);
      const me = await customer(200);
      const [seat] = ids(e, 'B3');
      await bought(app, me, seat);

      const res = await qr(me, seat);
      t.is(res.status, 200, JSON.stringify(res.body));
      const d = res.body.data;
      t.deepEqual(Object.keys(d).sort(), ['expires_at', 'generated_at', 'qr_payload', 'ttl_seconds']);
      t.is(d.ttl_seconds, 60);
      const raw = Buffer.from(d.qr_payload, 'base64');
      t.is(raw.toString('base64'), d.qr_payload, 'plain base64');
      t.true(raw.length > 12 + 16);

      const plain = decrypt(d.qr_payload);
      t.deepEqual(Object.keys(plain).sort(), ['generated_at', 'hall_id', 'seat_id', 'user_id']);
      t.like(plain, { seat_id: seat, user_id: me.userId, hall_id: e.hallId });
      t.regex(plain.generated_at, WHOLE_SECONDS);
      t.true(Math.abs(Date.parse(plain.generated_at) - Date.now()) < 10_000, plain.generated_at);
      t.is(Date.parse(d.generated_at), Date.parse(plain.generated_at));
      t.regex(d.expires_at, ISO_Z);
      t.is(Date.parse(d.expires_at) - Date.parse(d.generated_at), 60_000);

      const second = (await qr(me, seat)).body.data.qr_payload;
      t.not(second, d.qr_payload, 'a fresh IV each time');
      t.is(decrypt(second).seat_id, seat);
      t.throws(() => decrypt(d.qr_payload, randomBytes(32)), undefined, 'another key does not open it');
    },
  );

  test(
    name('a QR payload with one byte flipped, in the IV, ciphertext or tag, fails GCM authentication'),
    async (t) => {
      const e = await smallEvent(app, admin);
      const me = await customer(200);
      const [seat] = ids(e, 'A2');
      await bought(app, me, seat);
      const payload = (await qr(me, seat)).body.data.qr_payload;
      t.notThrows(() => decrypt(payload));
      for (const at of [0, 12, 20, -1, -16]) {
        t.throws(() => decrypt(flipped(payload, at)), undefined, `byte ${at}`);
      }
    },
  );

  test(name('?format=svg and ?format=png return the QR image itself; ?format=bmp is 400'), async (t) => {
    const e = await smallEvent(app, admin);
    const me = await customer(200);
    const [seat] = ids(e, 'B1');
    await bought(app, me, seat);
    const image = (format: string) =>
      fetch(`${app.url}/api/tickets/${seat}/qr?format=${format}`, { headers: { authorization: `Bearer ${me.token}` } });

    const svg = await image('svg');
    t.is(svg.status, 200);
    t.regex(svg.headers.get('content-type') ?? '', /^image\/svg\+xml/);
    t.regex(await svg.text(), /<svg[\s>]/);

    const png = await image('png');
    t.is(png.status, 200);
    t.regex(png.headers.get('content-type') ?? '', /^image\/png/);
    const bytes = new Uint8Array(await png.arrayBuffer());
    t.deepEqual([...bytes.subarray(0, 8)], PNG_MAGIC);
    t.true(bytes.length > 100);

    isError(t, await qr(me, seat, '?format=bmp'), 400, 'VALIDATION_ERROR');
    isError(t, await qr(me, seat, '?size=9'), 400, 'VALIDATION_ERROR');
  });

  test(
    name(
      'QR refusals: SEAT_NOT_FOUND, NOT_SEAT_OWNER for a seat someone else bought, SEAT_UNAVAILABLE for my held seat',
    ),
    async (t) => {
      const e = await smallEvent(app, admin);
      const [me, owner] = [await customer(200), await customer(200)];
      const [held1, sold] = ids(e, 'A1', 'A2');
      await held(app, me, held1);
      await bought(app, owner, sold);

      isError(t, await qr(me, randomUUID()), 404, 'SEAT_NOT_FOUND');
      isError(t, await qr(me, sold), 403, 'NOT_SEAT_OWNER');
      isError(t, await qr(me, held1), 409, 'SEAT_UNAVAILABLE');
      isError(t, await qr(me, 'not-a-uuid'), 400, 'INVALID_UUID');
      isError(t, await app.request('GET', `/api/tickets/${sold}/qr`), 401, 'UNAUTHORIZED');
      t.is((await qr(owner, sold)).status, 200);
    },
  );
}
