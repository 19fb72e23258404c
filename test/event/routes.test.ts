import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import { DATABASES, type TestApp } from '../helpers/app.js';
import { isError, isInvalid } from '../helpers/assert.js';
import {
  createEvent,
  createVenue,
  eventBody,
  fromNow,
  HOUR,
  holdOne,
  localPort,
  moveIntoPast,
  newStaff,
  seatRow,
  sellSeat,
} from '../helpers/events.js';
import { newUser, sharedAppWithAdmin } from '../helpers/users.js';

/**
 * The public event routes and the door's scan log. The sweeper is held off (one sweep an hour),
 * so that whatever reads as AVAILABLE after a hold's TTL does so before any sweep.
 */

const EVENT_KEYS = [
  'available_seats',
  'event_date',
  'event_id',
  'hall_id',
  'name',
  'pricing_tiers',
  'total_seats',
  'venue',
];
const SEAT_KEYS = ['category', 'price', 'row_number', 'seat_id', 'seat_number', 'status'];
const ENTRY_KEYS = [
  'expected_hall',
  'presented_hall',
  'result',
  'row_number',
  'scan_id',
  'scanned_at',
  'seat_id',
  'seat_number',
  'staff_user_id',
];

for (const kind of DATABASES) {
  // TTLs pass on a clock the tests move; the tests that move it run serially.
  const clock = manualClock();
  const { app, admin } = sharedAppWithAdmin(kind, { SWEEP_INTERVAL_MS: '3600000' }, clock);
  const name = (s: string) => `[${kind}] ${s}`;

  /** Every upcoming event, page by page. */
  async function allListed(a: TestApp) {
    const out: Record<string, any>[] = [];
    for (let page = 1; ; page++) {
      const res = await a.request('GET', `/api/events?per_page=100&page=${page}`);
      if (res.status !== 200) throw new Error(`list: ${res.status}`);
      out.push(...res.body.data);
      if (page >= res.body.pagination.total_pages) return out;
    }
  }

  test(name('GET /api/events lists upcoming events soonest first, paginated; past events are left out'), async (t) => {
    const venue = await createVenue(app, admin);
    // Sooner than every other event of this file (those are a month away), so they lead the list.
    const soon = [];
    for (const offset of [3, 1, 2]) {
      const res = await app.request('POST', '/api/admin/events', {
        token: admin.token,
        body: eventBody(venue.venue_id, { name: `soon ${offset}`, event_date: fromNow(offset * HOUR) }),
      });
      t.is(res.status, 201, JSON.stringify(res.body));
      soon[offset] = res.body.data.event_id;
    }
    const past = await createEvent(app, admin, { venueId: venue.venue_id });
    await moveIntoPast(app, past.eventId);

    const first = await app.request('GET', '/api/events?per_page=2');
    t.is(first.status, 200);
    t.is(first.body.success, true);
    t.deepEqual(
      first.body.data.map((e: { event_id: string }) => e.event_id),
      [soon[1], soon[2]],
    );
    const { total } = first.body.pagination;
    t.true(total >= 3);
    t.deepEqual(first.body.pagination, { page: 1, per_page: 2, total, total_pages: Math.ceil(total / 2) });
    const second = await app.request('GET', '/api/events?per_page=2&page=2');
    t.is(second.body.data[0].event_id, soon[3]);
    t.is(second.body.pagination.page, 2);

    const e = first.body.data[0];
    t.deepEqual(Object.keys(e).sort(), EVENT_KEYS);
    t.deepEqual(e.venue, { venue_id: venue.venue_id, name: venue.name });
    t.like(e, { name: 'soon 1', hall_id: 'HALL-A', total_seats: 10, available_seats: 10 });
    t.deepEqual(e.pricing_tiers, { CAT1: 149.5, CAT2: 80 });
    t.regex(e.event_date, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const listed = await allListed(app);
    const ids = listed.map((x) => x.event_id);
    t.false(ids.includes(past.eventId), 'an event whose date has passed is not listed');
    t.true(ids.includes(soon[3]));
    const dates = listed.map((x) => Date.parse(x.event_date));
    t.deepEqual(
      dates,
      [...dates].sort((a, b) => a - b),
      'soonest first',
    );
    t.true(dates.every((d) => d > clock.now()));

    const beyond = await app.request('GET', '/api/events?page=100000&per_page=100');
    t.is(beyond.status, 200);
    t.deepEqual(beyond.body.data, []);
    t.is(beyond.body.pagination.page, 100000);
    const defaults = await app.request('GET', '/api/events');
    t.like(defaults.body.pagination, { page: 1, per_page: 20 });
  });

  test(name('GET /api/events refuses pages and page sizes out of bounds'), async (t) => {
    for (const query of ['page=0', 'page=-1', 'page=abc', 'page=1.5', 'per_page=0', 'per_page=101', 'per_page=x']) {
      const res = await app.request('GET', `/api/events?${query}`);
      isInvalid(t, res, query.split('=')[0]);
    }
    isInvalid(t, await app.request('GET', '/api/events?sort=name'), 'sort');
    const max = await app.request('GET', '/api/events?per_page=100');
    t.is(max.status, 200);
  });

  test.serial(name('available_seats counts expired holds as available before any sweep'), async (t) => {
    const port = localPort(app);
    const e = await createEvent(app, admin);
    const [s1, s2, s3, s4, s5, s6] = e.seats.map((s) => s.seat_id);
    for (const seatId of [s1, s2, s3]) {
      await holdOne(port, seatId);
    }
    for (const seatId of [s4, s5]) {
      await holdOne(port, seatId, { ttlSeconds: 30 });
    }
    await sellSeat(port, s6);
    const available = async () => {
      const listed = (await allListed(app)).find((x) => x.event_id === e.eventId);
      const detail = await app.request('GET', `/api/events/${e.eventId}`);
      t.is(listed?.available_seats, detail.body.data.available_seats);
      return detail.body.data.available_seats;
    };
    t.is(await available(), 4);
    clock.advance(30_000);
    t.is(await available(), 6);
    // Not swept: the rows still say HELD; only the reading counts them as available.
    t.is((await seatRow(app, s4))?.status, 'HELD');
    t.is((await seatRow(app, s5))?.status, 'HELD');
  });

  test.serial(
    name('GET /api/events/{id} gives the seat map by row in map order, then seat number, with live statuses'),
    async (t) => {
      const port = localPort(app);
      const venue = await createVenue(app, admin, { address: '2 Stadium Walk, Singapore 397691' });
      const e = await createEvent(app, admin, {
        venueId: venue.venue_id,
        rows: [
          { row_number: 'C', seats: 12, category: 'CAT2' },
          { row_number: 'A', seats: 3, category: 'CAT1' },
          { row_number: 'B', seats: 2, category: 'CAT1' },
        ],
        extra: { hall_id: 'HALL-Z' },
      });
      const get = () => app.request('GET', `/api/events/${e.eventId}`);
      const res = await get();
      t.is(res.status, 200);
      const d = res.body.data;
      t.deepEqual(Object.keys(d).sort(), [...EVENT_KEYS, 'seats'].sort());
      t.deepEqual(d.venue, { venue_id: venue.venue_id, name: venue.name, address: '2 Stadium Walk, Singapore 397691' });
      t.like(d, { event_id: e.eventId, hall_id: 'HALL-Z', total_seats: 17, available_seats: 17 });
      t.deepEqual(d.pricing_tiers, { CAT1: 149.5, CAT2: 80 });
      t.deepEqual(Object.keys(d.seats[0]).sort(), SEAT_KEYS);
      t.deepEqual(
        d.seats.map((s: { row_number: string; seat_number: number }) => `${s.row_number}${s.seat_number}`),
        [...Array.from({ length: 12 }, (_, i) => `C${i + 1}`), ...['A1', 'A2', 'A3', 'B1', 'B2']],
      );
      t.true(d.seats.every((s: { status: string }) => s.status === 'AVAILABLE'));
      t.deepEqual(d.seats[0], { ...d.seats[0], category: 'CAT2', price: 80 });
      t.deepEqual(d.seats[12], { ...d.seats[12], category: 'CAT1', price: 149.5 });
      t.is(new Set(d.seats.map((s: { seat_id: string }) => s.seat_id)).size, 17);

      const seat = (label: string) => d.seats.find((s: any) => `${s.row_number}${s.seat_number}` === label).seat_id;
      await holdOne(port, seat('A1'));
      await sellSeat(port, seat('A2'));
      const sold = await sellSeat(port, seat('A3'));
      const staff = randomUUID();
      const verdict = await port.checkIn({
        seatId: seat('A3'),
        expectedOwnerId: sold.userId,
        staffId: staff,
        presentedHall: 'HALL-Z',
      });
      t.is(verdict.result, 'SUCCESS');
      await holdOne(port, seat('B1'), { ttlSeconds: 30 });

      const statuses = async () =>
        Object.fromEntries(
          (await get()).body.data.seats.map((s: any) => [`${s.row_number}${s.seat_number}`, s.status]),
        ) as Record<string, string>;
      const now = await statuses();
      t.like(now, { A1: 'HELD', A2: 'SOLD', A3: 'CHECKED_IN', B1: 'HELD', B2: 'AVAILABLE', C1: 'AVAILABLE' });
      t.is((await get()).body.data.available_seats, 13);
      clock.advance(30_000);
      const later = await statuses();
      t.like(later, { A1: 'HELD', A2: 'SOLD', A3: 'CHECKED_IN', B1: 'AVAILABLE' });
      t.is((await get()).body.data.available_seats, 14);
      t.is((await seatRow(app, seat('B1')))?.status, 'HELD', 'not swept, only read as available');
    },
  );

  test(name('GET /api/events/{id}: unknown is 404 EVENT_NOT_FOUND, malformed is 400 INVALID_UUID'), async (t) => {
    isError(t, await app.request('GET', `/api/events/${randomUUID()}`), 404, 'EVENT_NOT_FOUND');
    for (const bad of ['not-a-uuid', '123', `${randomUUID()}0`, randomUUID().replace(/-/g, ''), `{${randomUUID()}}`]) {
      isInvalid(t, await app.request('GET', `/api/events/${encodeURIComponent(bad)}`), 'event_id', 'INVALID_UUID');
    }
    // An upper-case UUID is the same event.
    const e = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 1, category: 'CAT1' }] });
    const upper = await app.request('GET', `/api/events/${e.eventId.toUpperCase()}`);
    t.is(upper.status, 200);
    t.is(upper.body.data.event_id, e.eventId);
    // A past event still has its page.
    await moveIntoPast(app, e.eventId);
    t.is((await app.request('GET', `/api/events/${e.eventId}`)).status, 200);
  });

  test(name('GET /api/admin/events/{id}/entries is the scan log, newest first, paginated'), async (t) => {
    const port = localPort(app);
    const staff = await newStaff(app, admin);
    const e = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 4, category: 'CAT1' }] });
    const [a1, a2, a3] = e.seats.map((s) => s.seat_id);
    const sold = await sellSeat(port, a1);
    const sold2 = await sellSeat(port, a2);
    const scans: [string, string, string][] = [
      [a1, sold.userId, 'HALL-B'], // WRONG_HALL
      [a1, sold.userId, 'HALL-A'], // SUCCESS
      [a1, sold.userId, 'HALL-A'], // DUPLICATE
      [a2, randomUUID(), 'HALL-A'], // NOT_OWNER
      [a3, randomUUID(), 'HALL-A'], // UNPAID
    ];
    const verdicts = [];
    for (const [seatId, owner, hall] of scans) {
      verdicts.push(await port.checkIn({ seatId, expectedOwnerId: owner, staffId: staff.userId, presentedHall: hall }));
      await sleep(5);
    }
    t.deepEqual(
      verdicts.map((v) => v.result),
      ['WRONG_HALL', 'SUCCESS', 'DUPLICATE', 'NOT_OWNER', 'UNPAID'],
    );
    t.truthy(sold2);

    const path = `/api/admin/events/${e.eventId}/entries`;
    for (const who of [staff, admin]) {
      const res = await app.request('GET', `${path}?per_page=3`, { token: who.token });
      t.is(res.status, 200, JSON.stringify(res.body));
      t.deepEqual(res.body.pagination, { page: 1, per_page: 3, total: 5, total_pages: 2 });
      t.deepEqual(
        res.body.data.map((x: { result: string }) => x.result),
        ['UNPAID', 'NOT_OWNER', 'DUPLICATE'],
      );
      t.deepEqual(Object.keys(res.body.data[0]).sort(), ENTRY_KEYS);
    }
    const page2 = await app.request('GET', `${path}?per_page=3&page=2`, { token: staff.token });
    t.deepEqual(
      page2.body.data.map((x: { result: string }) => x.result),
      ['SUCCESS', 'WRONG_HALL'],
    );
    const wrongHall = page2.body.data[1];
    t.like(wrongHall, {
      seat_id: a1,
      row_number: 'A',
      seat_number: 1,
      staff_user_id: staff.userId,
      presented_hall: 'HALL-B',
      expected_hall: 'HALL-A',
    });
    t.regex(wrongHall.scanned_at, /Z$/);
    const past = await app.request('GET', `${path}?page=3&per_page=3`, { token: staff.token });
    t.deepEqual(past.body.data, []);

    const customer = await newUser(app);
    isError(t, await app.request('GET', path, { token: customer.token }), 403, 'FORBIDDEN');
    isError(t, await app.request('GET', path), 401, 'UNAUTHORIZED');
    const unknown = await app.request('GET', `/api/admin/events/${randomUUID()}/entries`, { token: staff.token });
    isError(t, unknown, 404, 'EVENT_NOT_FOUND');
    const bad = await app.request('GET', '/api/admin/events/nope/entries', { token: staff.token });
    isInvalid(t, bad, 'event_id', 'INVALID_UUID');
    isInvalid(t, await app.request('GET', `${path}?per_page=101`, { token: staff.token }), 'per_page');
    // An event with no scans has an empty log.
    const quiet = await createEvent(app, admin, { rows: [{ row_number: 'A', seats: 1, category: 'CAT1' }] });
    const none = await app.request('GET', `/api/admin/events/${quiet.eventId}/entries`, { token: admin.token });
    t.deepEqual(none.body, {
      success: true,
      data: [],
      pagination: { page: 1, per_page: 20, total: 0, total_pages: 0 },
    });
  });
}
