import test from 'ava';
import { rowLabel } from '../../src/modules/event/event.seed.js';
import { DATABASES } from '../helpers/app.js';
import { isInvalid } from '../helpers/assert.js';
import { eventBody, eventRowCounts, eventSql, sharedAppWithVenue } from '../helpers/events.js';

/**
 * The largest event there may be: 50,000 seats, created with the event in one transaction. The
 * time is logged for the record, never asserted on (benchmarks are not tests).
 */

const MAX = 50_000;
const CATEGORIES = ['CAT1', 'CAT2', 'CAT3'];
/** 100 rows of 500 seats, and `extra` more seats in one last row. */
const bigMap = (extra = 0) => ({
  rows: [
    ...Array.from({ length: 100 }, (_, i) => ({ row_number: rowLabel(i), seats: 500, category: CATEGORIES[i % 3] })),
    ...(extra ? [{ row_number: 'ZZZ', seats: extra, category: 'CAT1' }] : []),
  ],
});

for (const kind of DATABASES) {
  const { app, admin, venue } = sharedAppWithVenue(kind);
  const name = (s: string) => `[${kind}] ${s}`;
  const tiers = { CAT1: 350, CAT2: 250, CAT3: 150 };

  test.serial(name('an event of 50,000 seats is created with every seat, in one request'), async (t) => {
    const body = eventBody(venue(), { name: 'Stadium night', pricing_tiers: tiers, seat_map: bigMap() });
    const size = Buffer.byteLength(JSON.stringify(body));
    t.true(size < 64 * 1024, `the body is ${size} bytes`);
    const before = await eventRowCounts(app);

    const started = performance.now();
    const res = await app.request('POST', '/api/admin/events', { token: admin.token, body });
    const elapsed = performance.now() - started;
    t.log(`${kind}: 50,000-seat event created in ${Math.round(elapsed)} ms (body ${size} bytes)`);

    t.is(res.status, 201, JSON.stringify(res.body));
    t.is(res.body.data.total_seats, MAX);
    const eventId = res.body.data.event_id;
    const [{ n, rows, first, last }] = await eventSql<{
      n: number | string;
      rows: number | string;
      first: number;
      last: number;
    }>(
      app,
      (
        tb,
      ) => `select count(*) as n, count(distinct row_index) as rows, min(seat_number) as first, max(seat_number) as last
        from ${tb('seats')} where event_id = ? and status = 'AVAILABLE'`,
      [eventId],
    );
    t.deepEqual([Number(n), Number(rows), Number(first), Number(last)], [MAX, 100, 1, 500]);
    const after = await eventRowCounts(app);
    t.deepEqual(after, { ...before, events: before.events + 1, seats: before.seats + MAX });
    const prices = await eventSql<{ category: string; price: number | string; n: number | string }>(
      app,
      (tb) =>
        `select category, min(price) as price, count(*) as n from ${tb('seats')} where event_id = ? group by category order by category`,
      [eventId],
    );
    t.deepEqual(
      prices.map((p) => [p.category, Number(p.price), Number(p.n)]),
      [
        ['CAT1', 35000, 34 * 500],
        ['CAT2', 25000, 33 * 500],
        ['CAT3', 15000, 33 * 500],
      ],
    );

    const readStarted = performance.now();
    const map = await app.request('GET', `/api/events/${eventId}`);
    t.log(
      `${kind}: its seat map (${map.body.data.seats.length} seats) read in ${Math.round(performance.now() - readStarted)} ms`,
    );
    t.is(map.status, 200);
    t.like(map.body.data, { total_seats: MAX, available_seats: MAX });
    const seats = map.body.data.seats as { row_number: string; seat_number: number }[];
    t.is(seats.length, MAX);
    t.deepEqual([seats[0].row_number, seats[0].seat_number], ['A', 1]);
    t.deepEqual([seats[500].row_number, seats[500].seat_number], ['B', 1]);
    t.deepEqual([seats.at(-1)?.row_number, seats.at(-1)?.seat_number], [rowLabel(99), 500]);
  });

  test.serial(name('50,001 seats are refused with 400, and nothing is created'), async (t) => {
    const before = await eventRowCounts(app);
    const res = await app.request('POST', '/api/admin/events', {
      token: admin.token,
      body: eventBody(venue(), { pricing_tiers: tiers, seat_map: bigMap(1) }),
    });
    isInvalid(t, res, 'seat_map.rows');
    t.deepEqual(await eventRowCounts(app), before);
  });
}
