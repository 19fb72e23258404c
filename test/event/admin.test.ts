import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { DATABASES, sharedApp } from '../helpers/app.js';
import { isError, isInvalid } from '../helpers/assert.js';
import { createVenue, DAY, eventBody, eventRowCounts, eventSql, fromNow, newStaff } from '../helpers/events.js';
import { adminLogin, newUser, type TestUser } from '../helpers/users.js';

/**
 * Creating venues and events. The refusals are serial (ava runs them before the concurrent
 * tests), because "nothing was created" is shown by counting every row of the module.
 */

for (const kind of DATABASES) {
  let admin: TestUser;
  let customer: TestUser;
  let staff: TestUser;
  let venueId: string;
  const app = sharedApp(kind, {
    ready: async (a) => {
      admin = await adminLogin(a);
      [customer, staff] = await Promise.all([newUser(a), newStaff(a, admin)]);
      venueId = (await createVenue(a, admin)).venue_id;
    },
  });
  const name = (s: string) => `[${kind}] ${s}`;

  /** As the admin unless another token (or `null`, none) is given. */
  const postVenue = (body: unknown, token: string | null = admin.token) =>
    app.request('POST', '/api/admin/venues', { token: token ?? undefined, body });
  const postEvent = (body: unknown, token: string | null = admin.token) =>
    app.request('POST', '/api/admin/events', { token: token ?? undefined, body });

  async function createsNothing(t: ExecutionContext, body: () => Promise<void>) {
    const before = await eventRowCounts(app);
    await body();
    t.deepEqual(await eventRowCounts(app), before, 'nothing is created');
  }

  const rows = (...r: [string, number, string][]) => ({
    rows: r.map(([row_number, seats, category]) => ({ row_number, seats, category })),
  });

  test.serial(name('an unknown category is 400 naming the row, and nothing is created'), async (t) => {
    await createsNothing(t, async () => {
      const res = await postEvent(eventBody(venueId, { seat_map: rows(['A', 5, 'CAT1'], ['B', 5, 'VIP']) }));
      isInvalid(t, res, 'seat_map.rows[1].category');
      t.regex(JSON.stringify(res.body.details), /VIP/);
      // Categories are matched exactly, case included.
      isInvalid(
        t,
        await postEvent(eventBody(venueId, { seat_map: rows(['A', 5, 'cat1']) })),
        'seat_map.rows[0].category',
      );
    });
  });

  test.serial(name('duplicate row labels, also differing only in case, are 400 and create nothing'), async (t) => {
    await createsNothing(t, async () => {
      for (const second of ['A', 'a', ' A ']) {
        const res = await postEvent(
          eventBody(venueId, { seat_map: rows(['A', 5, 'CAT1'], ['B', 2, 'CAT2'], [second, 5, 'CAT2']) }),
        );
        isError(t, res, 400, 'VALIDATION_ERROR');
        t.true(
          res.body.details.some((d: { field: string }) => d.field.startsWith('seat_map.rows')),
          JSON.stringify(res.body),
        );
      }
    });
  });

  test.serial(name('zero seats, a row of 0 seats and more than 50,000 seats are 400 and create nothing'), async (t) => {
    await createsNothing(t, async () => {
      isInvalid(t, await postEvent(eventBody(venueId, { seat_map: { rows: [] } })), 'seat_map.rows');
      isInvalid(t, await postEvent(eventBody(venueId, { seat_map: {} })), 'seat_map.rows');
      isInvalid(t, await postEvent(eventBody(venueId, { seat_map: rows(['A', 0, 'CAT1']) })), 'seat_map.rows[0].seats');
      isInvalid(
        t,
        await postEvent(eventBody(venueId, { seat_map: rows(['A', 5, 'CAT1'], ['B', 0, 'CAT1']) })),
        'seat_map.rows[1].seats',
      );
      for (const n of [-1, 2.5, '5']) {
        isInvalid(
          t,
          await postEvent(eventBody(venueId, { seat_map: rows(['A', n as number, 'CAT1']) })),
          'seat_map.rows[0].seats',
        );
      }
      // Every row within bounds, the total over them.
      const over = await postEvent(
        eventBody(venueId, { seat_map: rows(['A', 25_000, 'CAT1'], ['B', 25_001, 'CAT2']) }),
      );
      isInvalid(t, over, 'seat_map.rows');
      t.regex(over.body.details.map((d: { message: string }) => d.message).join(' '), /50000|50,000/);
      isInvalid(
        t,
        await postEvent(eventBody(venueId, { seat_map: rows(['A', 50_001, 'CAT1']) })),
        'seat_map.rows[0].seats',
      );
    });
  });

  test.serial(
    name('a past date, a date without a time zone or a day that does not exist is 400; nothing is created'),
    async (t) => {
      await createsNothing(t, async () => {
        for (const date of [fromNow(-DAY), fromNow(-1000), '2001-01-01T19:00:00Z', '2001-01-01T19:00:00+08:00']) {
          isInvalid(t, await postEvent(eventBody(venueId, { event_date: date })), 'event_date');
        }
        const future = new Date(Date.now() + 30 * DAY).toISOString();
        for (const date of [
          future.replace('Z', ''),
          future.slice(0, 10),
          future.slice(0, 16),
          'tomorrow',
          '',
          1893456000000,
          // Days that do not exist, rather than silently the next month's.
          '2099-02-30T19:00:00Z',
          '2100-02-29T19:00:00Z',
          '2099-04-31T19:00:00+08:00',
          '2099-13-01T19:00:00Z',
        ]) {
          isInvalid(t, await postEvent(eventBody(venueId, { event_date: date })), 'event_date');
        }
      });
      // A time zone written as an offset is fine, and comes back in UTC.
      const offset = `${new Date(Date.now() + 30 * DAY).toISOString().slice(0, 19)}+08:00`;
      const ok = await postEvent(eventBody(venueId, { event_date: offset }));
      t.is(ok.status, 201, JSON.stringify(ok.body));
      t.is(ok.body.data.event_date, new Date(offset).toISOString());
    },
  );

  test.serial(
    name('a malformed venue id is 400 INVALID_UUID, an unknown one 404 VENUE_NOT_FOUND; nothing is created'),
    async (t) => {
      await createsNothing(t, async () => {
        for (const bad of ['not-a-uuid', '123', `${venueId}0`, venueId.replace(/-/g, ''), "' OR 1=1 --"]) {
          isInvalid(t, await postEvent(eventBody(bad)), 'venue_id', 'INVALID_UUID');
        }
        isError(t, await postEvent(eventBody(randomUUID())), 404, 'VENUE_NOT_FOUND');
        // A big map at an unknown venue: the transaction leaves no seat behind.
        const big = await postEvent(
          eventBody(randomUUID(), { seat_map: rows(['A', 5000, 'CAT1'], ['B', 5000, 'CAT2']) }),
        );
        isError(t, big, 404, 'VENUE_NOT_FOUND');
      });
    },
  );

  test.serial(
    name('pricing tiers must be positive whole cents; venue input is validated; nothing is created'),
    async (t) => {
      await createsNothing(t, async () => {
        for (const price of [1.005, -5, 0, 0.001, '80', null, 100_000.01]) {
          const res = await postEvent(eventBody(venueId, { pricing_tiers: { CAT1: 149.5, CAT2: price } }));
          isInvalid(t, res, 'pricing_tiers.CAT2');
        }
        isInvalid(t, await postEvent(eventBody(venueId, { pricing_tiers: {} })), 'pricing_tiers');
        isError(
          t,
          await postEvent(eventBody(venueId, { pricing_tiers: { 'CAT 1': 10, CAT1: 1, CAT2: 2 } })),
          400,
          'VALIDATION_ERROR',
        );
        for (const [field, value] of [
          ['name', ''],
          ['name', '   '],
          ['name', 'x'.repeat(201)],
          ['address', ''],
          ['total_halls', 0],
          ['total_halls', 1.5],
          ['total_halls', '2'],
          ['total_halls', -1],
        ] as const) {
          isInvalid(t, await postVenue({ name: 'Hall', address: '1 Road', total_halls: 1, [field]: value }), field);
        }
        isInvalid(t, await postVenue({ address: '1 Road', total_halls: 1 }), 'name');
        isInvalid(
          t,
          await postVenue({ name: 'Hall', address: '1 Road', total_halls: 1, venue_id: randomUUID() }),
          'venue_id',
        );
      });
    },
  );

  test.serial(
    name('customers and staff are 403 and anonymous callers 401 on admin writes; nothing is created'),
    async (t) => {
      await createsNothing(t, async () => {
        const venue = { name: 'Hall', address: '1 Road', total_halls: 1 };
        for (const who of [customer, staff]) {
          isError(t, await postVenue(venue, who.token), 403, 'FORBIDDEN');
          isError(t, await postEvent(eventBody(venueId), who.token), 403, 'FORBIDDEN');
        }
        isError(t, await postVenue(venue, null), 401, 'UNAUTHORIZED');
        isError(t, await postEvent(eventBody(venueId), null), 401, 'UNAUTHORIZED');
        isError(t, await postVenue(venue, 'not.a.token'), 401, 'UNAUTHORIZED');
      });
    },
  );

  test(name('POST /api/admin/venues creates a venue: 201 with its fields'), async (t) => {
    const res = await postVenue({ name: '  Esplanade  ', address: '1 Esplanade Dr, Singapore 038981', total_halls: 3 });
    t.is(res.status, 201, JSON.stringify(res.body));
    t.is(res.body.success, true);
    const v = res.body.data;
    t.deepEqual(Object.keys(v).sort(), ['address', 'created_at', 'name', 'total_halls', 'venue_id']);
    t.like(v, { name: 'Esplanade', address: '1 Esplanade Dr, Singapore 038981', total_halls: 3 });
    t.regex(v.venue_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    t.regex(v.created_at, /Z$/);
    t.true(Math.abs(Date.parse(v.created_at) - Date.now()) < 60_000);
    const [row] = await eventSql(app, (tb) => `select name, address, total_halls from ${tb('venues')} where id = ?`, [
      v.venue_id,
    ]);
    t.deepEqual(
      { ...row, total_halls: Number(row.total_halls) },
      { name: 'Esplanade', address: v.address, total_halls: 3 },
    );
  });

  test(
    name('POST /api/admin/events creates the event and all its seats: 201 with event_id and total_seats'),
    async (t) => {
      const body = eventBody(venueId, {
        name: 'Gala',
        hall_id: 'HALL-B',
        pricing_tiers: { CAT1: 350, CAT2: 149.5, CAT3: 0.01 },
        seat_map: rows(['A', 20, 'CAT1'], ['B', 15, 'CAT2'], ['AA', 7, 'CAT3']),
      });
      const res = await postEvent(body);
      t.is(res.status, 201, JSON.stringify(res.body));
      const d = res.body.data;
      t.like(d, { name: 'Gala', venue_id: venueId, hall_id: 'HALL-B', total_seats: 42 });
      t.deepEqual(d.pricing_tiers, { CAT1: 350, CAT2: 149.5, CAT3: 0.01 });
      t.is(d.event_date, new Date(body.event_date as string).toISOString());
      t.regex(d.event_id, /^[0-9a-f-]{36}$/);

      const seats = await eventSql<{ row_number: string; n: number | string; price: number | string; status: string }>(
        app,
        (tb) => `select row_number, count(*) as n, min(price) as price, min(status) as status from ${tb('seats')}
        where event_id = ? group by row_number order by row_number`,
        [d.event_id],
      );
      t.deepEqual(
        seats.map((r) => [r.row_number, Number(r.n), Number(r.price), r.status]),
        [
          ['A', 20, 35000, 'AVAILABLE'],
          ['AA', 7, 1, 'AVAILABLE'],
          ['B', 15, 14950, 'AVAILABLE'],
        ],
        'prices are stored in cents',
      );
      const [event] = await eventSql(
        app,
        (tb) => `select total_seats, pricing_tiers from ${tb('events')} where id = ?`,
        [d.event_id],
      );
      t.is(Number(event.total_seats), 42);
      t.deepEqual(JSON.parse(event.pricing_tiers as string), { CAT1: 35000, CAT2: 14950, CAT3: 1 });
      const map = await app.request('GET', `/api/events/${d.event_id}`);
      t.is(map.body.data.seats.length, 42);
      t.is(map.body.data.seats.at(-1).price, 0.01);
    },
  );

  test(name('hostile strings in names are stored and given back verbatim'), async (t) => {
    const hostile = ["' OR 1=1 --", '<script>alert(1)</script>', '"; DROP TABLE seats; --'];
    for (const s of hostile) {
      const venue = await postVenue({ name: s, address: s, total_halls: 1 });
      t.is(venue.status, 201);
      t.like(venue.body.data, { name: s, address: s });
      const res = await postEvent(eventBody(venue.body.data.venue_id, { name: s, hall_id: s.slice(0, 50) }));
      t.is(res.status, 201, JSON.stringify(res.body));
      const map = await app.request('GET', `/api/events/${res.body.data.event_id}`);
      t.like(map.body.data, { name: s, hall_id: s, venue: { name: s, address: s } });
    }
    // Row labels too, within their 10 characters.
    const res = await postEvent(eventBody(venueId, { seat_map: rows(["'--", 1, 'CAT1'], ['<b>', 1, 'CAT1']) }));
    t.is(res.status, 201, JSON.stringify(res.body));
    const map = await app.request('GET', `/api/events/${res.body.data.event_id}`);
    t.deepEqual(
      map.body.data.seats.map((s: { row_number: string }) => s.row_number),
      ["'--", '<b>'],
    );
  });
}
