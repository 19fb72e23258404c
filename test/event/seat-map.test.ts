import test from 'ava';
import { DATABASES } from '../helpers/app.js';
import { isInvalid } from '../helpers/assert.js';
import { eventBody, eventRowCounts, sharedAppWithVenue } from '../helpers/events.js';

const A = { row_number: 'A', seats: 5, category: 'CAT1' };
const B = { row_number: 'B', seats: 5, category: 'CAT2' };

/** Malformed row lists, and the detail fields each must name: a repeat is named by its index. */
const MALFORMED: [unknown[], string[]][] = [
  [
    [1, 2],
    ['seat_map.rows[0]', 'seat_map.rows[1]'],
  ],
  [[null], ['seat_map.rows[0]']],
  [['A'], ['seat_map.rows[0]']],
  [[{}], ['seat_map.rows[0].row_number', 'seat_map.rows[0].seats', 'seat_map.rows[0].category']],
  [[[]], ['seat_map.rows[0]']],
  [[A, 7, B], ['seat_map.rows[1]']],
  [[A, { ...B, row_number: 5 }], ['seat_map.rows[1].row_number']],
  [
    [A, { seats: 5, category: 'CAT2' }, { ...A, row_number: 'a' }],
    ['seat_map.rows[1].row_number', 'seat_map.rows[2]'],
  ],
  [
    [null, A, 'B', { ...A }],
    ['seat_map.rows[0]', 'seat_map.rows[2]', 'seat_map.rows[3]'],
  ],
  [[A, B, { ...B, row_number: ' b ' }], ['seat_map.rows[2]']],
];

for (const kind of DATABASES) {
  const { app, admin, venue } = sharedAppWithVenue(kind);
  const name = (s: string) => `[${kind}] ${s}`;

  // Serial: it counts every row of the module, which the other test changes.
  test.serial(
    name('a malformed or repeating row list is 400 naming each faulty row, and creates nothing'),
    async (t) => {
      const before = await eventRowCounts(app);
      for (const [rows, fields] of MALFORMED) {
        const res = await app.request('POST', '/api/admin/events', {
          token: admin.token,
          body: eventBody(venue(), { seat_map: { rows } }),
        });
        const shown = `${JSON.stringify(rows)} → ${JSON.stringify(res.body)}`;
        isInvalid(t, res, fields[0]);
        t.deepEqual(res.body.details?.map((d: { field: string }) => d.field).sort(), [...fields].sort(), shown);
      }
      t.deepEqual(await eventRowCounts(app), before, 'nothing is created');
    },
  );

  test(name('a well-formed row list still creates the event'), async (t) => {
    const res = await app.request('POST', '/api/admin/events', {
      token: admin.token,
      body: eventBody(venue(), { seat_map: { rows: [A, B, { ...A, row_number: 'C' }] } }),
    });
    t.is(res.status, 201, JSON.stringify(res.body));
    t.is(res.body.data.total_seats, 15);
  });
}
