import test, { type ExecutionContext } from 'ava';
import { DATABASES, sharedApp } from '../helpers/app.js';
import { BAD_UUIDS, invalid, isError, isInvalid, MALFORMED_JSON } from '../helpers/assert.js';
import { createEvent, eventBody, eventRowCounts } from '../helpers/events.js';
import { streamed } from '../helpers/stream.js';
import { claimsOf, expired, sign, unsigned } from '../helpers/tokens.js';
import { adminLogin, newUser, type TestUser } from '../helpers/users.js';

/**
 * Every event endpoint against malformed, mistyped, oversized and hostile input: always the
 * documented 4xx in the envelope, never a 500, and nothing written (every row of the module is
 * counted before and after, hence serial).
 */

type Outcome = { status: number; code: string } | 'accepted';

interface Endpoint {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  admin: boolean;
  body?: Record<string, unknown>;
  query?: Record<string, string>;
  required?: string[];
  wrongTypes?: Record<string, unknown[]>;
  strings?: Record<string, Outcome>;
}

/** Each at most 50 characters, so that it also fits a hall id. */
const HOSTILE = ["' OR 1=1 --", '"; DROP TABLE seats; --', '<script>alert(1)</script>', "admin'--", '{"$gt": ""}'];
const badPage = { page: ['abc', '0', '-1', '1.5', '1e99'], per_page: ['abc', '0', '101', '2.5'] };

interface Fixture {
  admin: TestUser;
  customer: TestUser;
  venueId: string;
  eventId: string;
}

function endpoints(f: Fixture): Endpoint[] {
  return [
    {
      name: 'list events',
      method: 'GET',
      path: '/api/events',
      admin: false,
      query: { page: '1', per_page: '5' },
      wrongTypes: badPage,
      strings: { page: invalid, per_page: invalid },
    },
    { name: 'event', method: 'GET', path: `/api/events/${f.eventId}`, admin: false },
    {
      name: 'create venue',
      method: 'POST',
      path: '/api/admin/venues',
      admin: true,
      body: { name: 'Bad input hall', address: '1 Road', total_halls: 2 },
      required: ['name', 'address', 'total_halls'],
      wrongTypes: {
        name: [1, true, null, [], {}, '', 'x'.repeat(201)],
        address: [1, false, null, ['1 Road'], ''],
        total_halls: ['2', true, null, 1.5, [2], { n: 2 }, 0, -1, 1001],
      },
      strings: { name: 'accepted', address: 'accepted', total_halls: invalid },
    },
    {
      name: 'create event',
      method: 'POST',
      path: '/api/admin/events',
      admin: true,
      get body() {
        return eventBody(f.venueId);
      },
      required: ['name', 'venue_id', 'hall_id', 'event_date', 'pricing_tiers', 'seat_map'],
      wrongTypes: {
        name: [1, null, {}, ''],
        venue_id: [1, true, null, {}, [f.venueId]],
        hall_id: [1, null, [], '', 'H'.repeat(51)],
        event_date: [1893456000000, true, null, {}, ''],
        pricing_tiers: ['CAT1', 1, [], null],
        seat_map: ['A', 1, [], null],
      },
      strings: {
        name: 'accepted',
        hall_id: 'accepted',
        event_date: invalid,
        venue_id: { status: 400, code: 'INVALID_UUID' },
      },
    },
    {
      name: 'entries',
      method: 'GET',
      path: `/api/admin/events/${f.eventId}/entries`,
      admin: true,
      query: { page: '1', per_page: '5' },
      wrongTypes: badPage,
      strings: { page: invalid, per_page: invalid },
    },
  ];
}

const withBody = (e: Endpoint) => e.method === 'POST';

for (const kind of DATABASES) {
  let f: Fixture;
  const app = sharedApp(kind, {
    ready: async (a) => {
      const admin = await adminLogin(a);
      const e = await createEvent(a, admin);
      f = { admin, customer: await newUser(a), venueId: e.venueId, eventId: e.eventId };
    },
  });
  const name = (s: string) => `[${kind}] ${s}`;
  const pathWith = (e: Endpoint, query?: Record<string, string>) =>
    query ? `${e.path}?${new URLSearchParams(query)}` : e.path;

  function send(
    e: Endpoint,
    options: { body?: unknown; raw?: string; headers?: Record<string, string>; query?: Record<string, string> } = {},
  ) {
    return app.request(e.method, pathWith(e, options.query ?? e.query), {
      token: e.admin ? f.admin.token : undefined,
      ...options,
    });
  }

  async function writesNothing(t: ExecutionContext, body: () => Promise<void>) {
    const before = await eventRowCounts(app);
    await body();
    t.deepEqual(await eventRowCounts(app), before, 'nothing is written');
  }

  test.serial(name('the valid requests of the table succeed (the table itself is right)'), async (t) => {
    for (const e of endpoints(f)) {
      const res = await send(e, e.body ? { body: e.body } : {});
      t.true(res.status < 300, `${e.name}: ${res.status} ${JSON.stringify(res.body)}`);
    }
  });

  test.serial(name('malformed and non-object JSON answer 400 VALIDATION_ERROR'), async (t) => {
    await writesNothing(t, async () => {
      for (const e of endpoints(f).filter(withBody)) {
        for (const raw of MALFORMED_JSON) {
          isError(t, await send(e, { raw, headers: { 'content-type': 'application/json' } }), 400, 'VALIDATION_ERROR');
        }
      }
    });
  });

  test.serial(name('fields of the wrong type answer 400 naming the field'), async (t) => {
    await writesNothing(t, async () => {
      for (const e of endpoints(f)) {
        for (const [field, values] of Object.entries(e.wrongTypes ?? {})) {
          for (const value of values) {
            const res = e.body
              ? await send(e, { body: { ...e.body, [field]: value } })
              : await send(e, { query: { ...e.query, [field]: String(value) } });
            isInvalid(t, res, field);
          }
        }
      }
      // Inside the seat map, too.
      const create = endpoints(f)[3];
      const row = { row_number: 'A', seats: 5, category: 'CAT1' };
      for (const [field, value] of [
        ['row_number', 1],
        ['row_number', ''],
        ['row_number', 'R'.repeat(11)],
        ['seats', '5'],
        ['seats', null],
        ['category', 1],
        ['category', 'CAT 1'],
      ] as const) {
        const res = await send(create, { body: { ...create.body, seat_map: { rows: [{ ...row, [field]: value }] } } });
        isInvalid(t, res, `seat_map.rows.0.${field}`);
      }
      isInvalid(t, await send(create, { body: { ...create.body, seat_map: { rows: 'A' } } }), 'seat_map.rows');
    });
  });

  test.serial(name('missing fields, empty bodies and extra fields answer 400 naming the field'), async (t) => {
    await writesNothing(t, async () => {
      for (const e of endpoints(f)) {
        for (const field of e.required ?? []) {
          const { [field]: _, ...rest } = e.body ?? {};
          isInvalid(t, await send(e, { body: rest }), field);
        }
        if (withBody(e)) {
          isError(t, await send(e, { body: {} }), 400, 'VALIDATION_ERROR');
          isError(t, await send(e), 400, 'VALIDATION_ERROR');
          isInvalid(t, await send(e, { body: { ...e.body, is_admin: true } }), 'is_admin');
        }
        isInvalid(t, await send(e, { query: { ...e.query, debug: '1' } }), 'debug');
      }
      const create = endpoints(f)[3];
      const rows = [{ row_number: 'A', seats: 5, category: 'CAT1', price: 1 }];
      isInvalid(t, await send(create, { body: { ...create.body, seat_map: { rows } } }), 'seat_map.rows.0.price');
      const extraMap = { rows: [{ row_number: 'A', seats: 5, category: 'CAT1' }], layout: 'x' };
      isInvalid(t, await send(create, { body: { ...create.body, seat_map: extraMap } }), 'seat_map.layout');
    });
  });

  test.serial(name('prices with a fraction of a cent, negative or zero answer 400'), async (t) => {
    const create = endpoints(f)[3];
    await writesNothing(t, async () => {
      for (const price of [1.005, -5, 0, -0.01, 0.001, 1e-7, 100_000.01, 1e308]) {
        const res = await send(create, { body: { ...create.body, pricing_tiers: { CAT1: price, CAT2: 80 } } });
        isInvalid(t, res, 'pricing_tiers.CAT1');
      }
    });
  });

  test.serial(name('a body over 64 KiB answers 413 PAYLOAD_TOO_LARGE, with or without Content-Length'), async (t) => {
    await writesNothing(t, async () => {
      for (const e of endpoints(f).filter(withBody)) {
        isError(t, await send(e, { body: { ...e.body, padding: 'x'.repeat(64 * 1024) } }), 413, 'PAYLOAD_TOO_LARGE');
        const chunks = Array.from({ length: 70 }, (_, i) => (i === 0 ? '{"padding":"' : 'y'.repeat(1024)));
        const res = await streamed(`${app.url}${e.path}`, chunks, {
          headers: { authorization: `Bearer ${f.admin.token}` },
        });
        isError(t, res, 413, 'PAYLOAD_TOO_LARGE');
      }
      // A seat map drawn row by row past 64 KiB is too large, whatever it says.
      const create = endpoints(f)[3];
      const rows = Array.from({ length: 2000 }, (_, i) => ({ row_number: `R${i}`, seats: 1, category: 'CAT1' }));
      isError(t, await send(create, { body: { ...create.body, seat_map: { rows } } }), 413, 'PAYLOAD_TOO_LARGE');
    });
  });

  test.serial(name('bodies that are not JSON answer 415 UNSUPPORTED_MEDIA_TYPE'), async (t) => {
    const types: [string, string][] = [
      ['text/plain', JSON.stringify({ name: 'x' })],
      ['application/x-www-form-urlencoded', 'name=x&address=y&total_halls=1'],
      ['multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--xyz--'],
      ['application/xml', '<venue><name>x</name></venue>'],
    ];
    await writesNothing(t, async () => {
      for (const e of endpoints(f).filter(withBody)) {
        for (const [type, raw] of types) {
          isError(t, await send(e, { raw, headers: { 'content-type': type } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
        }
      }
    });
  });

  test.serial(name('malformed UUIDs in the path or the body answer 400 INVALID_UUID'), async (t) => {
    await writesNothing(t, async () => {
      for (const bad of BAD_UUIDS) {
        const id = encodeURIComponent(bad);
        isInvalid(t, await app.request('GET', `/api/events/${id}`), 'event_id', 'INVALID_UUID');
        const entries = await app.request('GET', `/api/admin/events/${id}/entries`, { token: f.admin.token });
        isInvalid(t, entries, 'event_id', 'INVALID_UUID');
        const create = await app.request('POST', '/api/admin/events', { token: f.admin.token, body: eventBody(bad) });
        isInvalid(t, create, 'venue_id', 'INVALID_UUID');
      }
    });
  });

  test.serial(name('SQL- and script-like strings get a clean 4xx, or are stored verbatim'), async (t) => {
    const before = await eventRowCounts(app);
    let created = { venues: 0, events: 0, seats: 0 };
    for (const e of endpoints(f)) {
      for (const [field, outcome] of Object.entries(e.strings ?? {})) {
        for (const hostile of HOSTILE) {
          const res = e.body
            ? await send(e, { body: { ...e.body, [field]: hostile } })
            : await send(e, { query: { ...e.query, [field]: hostile } });
          const what = `${e.name}.${field} = ${hostile}`;
          if (outcome === 'accepted') {
            t.is(res.status, 201, `${what}: ${JSON.stringify(res.body)}`);
            t.is(res.body.data[field], hostile, what);
            created =
              e.name === 'create venue'
                ? { ...created, venues: created.venues + 1 }
                : { ...created, events: created.events + 1, seats: created.seats + 10 };
          } else {
            isError(t, res, outcome.status, outcome.code);
          }
        }
      }
    }
    const after = await eventRowCounts(app);
    t.deepEqual(after, {
      venues: before.venues + created.venues,
      events: before.events + created.events,
      seats: before.seats + created.seats,
      scans: before.scans,
    });
    // Hostile text in a query that takes none is refused, not run.
    isInvalid(t, await app.request('GET', `/api/events?${encodeURIComponent("' OR 1=1 --")}=1`), "' OR 1=1 --");
  });

  test.serial(name('text with a NUL character answers 400 naming the field'), async (t) => {
    const [, , venue, create] = endpoints(f);
    await writesNothing(t, async () => {
      isInvalid(t, await send(venue, { body: { ...venue.body, name: 'a\u0000b' } }), 'name');
      isInvalid(t, await send(venue, { body: { ...venue.body, address: '\u0000' } }), 'address');
      isInvalid(t, await send(create, { body: { ...create.body, hall_id: 'HALL\u0000A' } }), 'hall_id');
      const rows = [{ row_number: 'A\u0000', seats: 1, category: 'CAT1' }];
      isInvalid(t, await send(create, { body: { ...create.body, seat_map: { rows } } }), 'seat_map.rows.0.row_number');
    });
  });

  test.serial(name('unknown routes answer 404; known paths with a wrong method 405 with Allow'), async (t) => {
    await writesNothing(t, async () => {
      for (const path of [`/api/events/${f.eventId}/seats`, `/api/admin/events/${f.eventId}`, '/api/admin/venues/x']) {
        isError(t, await app.request('GET', path, { token: f.admin.token }), 404, 'NOT_FOUND');
      }
      const wrong: [string, string][] = [
        ['POST', '/api/events'],
        ['DELETE', `/api/events/${f.eventId}`],
        ['PUT', `/api/events/${f.eventId}`],
        ['GET', '/api/admin/venues'],
        ['GET', '/api/admin/events'],
        ['PATCH', '/api/admin/venues'],
        ['DELETE', `/api/admin/events/${f.eventId}/entries`],
        ['POST', `/api/admin/events/${f.eventId}/entries`],
      ];
      for (const [method, path] of wrong) {
        const res = await app.request(method, path, { token: f.admin.token });
        isError(t, res, 405, 'METHOD_NOT_ALLOWED');
        t.truthy(res.headers.get('allow'), `${method} ${path} says what is allowed`);
      }
    });
  });

  test.serial(name('expired, forged, unsigned and refresh tokens answer 401; customers 403'), async (t) => {
    const claims = claimsOf(f.admin.token);
    const cases: [string | undefined, string][] = [
      [undefined, 'UNAUTHORIZED'],
      [await sign(app, expired(f.admin.token)), 'TOKEN_EXPIRED'],
      [await sign(app, claims, { secret: 'a-secret-that-is-not-the-server-one' }), 'UNAUTHORIZED'],
      [unsigned(claims), 'UNAUTHORIZED'],
      [await sign(app, { ...claims, role: 'admin', sub: f.customer.userId }), 'UNAUTHORIZED'],
      [f.admin.refreshToken, 'UNAUTHORIZED'],
      ['garbage', 'UNAUTHORIZED'],
    ];
    await writesNothing(t, async () => {
      for (const e of endpoints(f).filter((x) => x.admin)) {
        for (const [token, code] of cases) {
          isError(t, await app.request(e.method, pathWith(e, e.query), { token, body: e.body }), 401, code);
        }
        const res = await app.request(e.method, pathWith(e, e.query), { token: f.customer.token, body: e.body });
        isError(t, res, 403, 'FORBIDDEN');
      }
    });
  });
}
