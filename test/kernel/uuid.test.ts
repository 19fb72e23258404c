import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import type { AppError } from '../../src/kernel/errors.js';
import { uuid } from '../../src/kernel/schemas.js';
import { DATABASES, type Response } from '../helpers/app.js';
import { BAD_UUIDS, isInvalid } from '../helpers/assert.js';
import { ADAPTERS } from '../helpers/events.js';
import { sharedAppWithAdmin, USER_ADAPTERS } from '../helpers/users.js';

/** One detail, for the one field, saying UUID. */
function saysUuidOnce(t: ExecutionContext, res: Response, field: string) {
  isInvalid(t, res, field, 'INVALID_UUID');
  t.deepEqual(res.body.details, [{ field, message: `${field} must be a valid UUID` }]);
}

test('uuid() takes the canonical form in either case and gives it back in lower case', (t) => {
  for (const id of [randomUUID(), '017f22e2-79b0-7cc3-98c4-dc0c0c07398f', '6ba7b810-9dad-11d1-80b4-00c04fd430c8']) {
    t.deepEqual(uuid().validate(id.toUpperCase()), { value: id });
    t.deepEqual(uuid().validate(id, { convert: false }), { value: id });
  }
});

test('uuid() refuses other spellings and non-UUIDs with one "must be a valid UUID" detail', (t) => {
  const id = randomUUID();
  const others = [
    ...BAD_UUIDS,
    `{${id}}`,
    `(${id})`,
    id.replace(/-/g, ':'),
    `${id.slice(0, 13)}${id.slice(14)}`,
    '00000000-0000-0000-0000-000000000000',
    `${id.slice(0, 14)}0${id.slice(15)}`,
    `${id.slice(0, 19)}0${id.slice(20)}`,
    ` ${id}`,
  ];
  for (const value of others) {
    const { error } = uuid().label('id').validate(value, { abortEarly: false });
    t.deepEqual(
      error?.details.map((d) => d.message),
      ['"id" must be a valid UUID'],
      value,
    );
  }
});

for (const kind of DATABASES) {
  const { app, admin } = sharedAppWithAdmin(kind);
  const name = (s: string) => `[${kind}] ${s}`;

  test(name('a malformed id in a path gets one detail saying UUID'), async (t) => {
    for (const bad of BAD_UUIDS) {
      const id = encodeURIComponent(bad);
      saysUuidOnce(t, await app.request('GET', `/api/events/${id}`), 'event_id');
      saysUuidOnce(
        t,
        await app.request('PATCH', `/api/admin/users/${id}`, { token: admin.token, body: { role: 'staff' } }),
        'user_id',
      );
    }
  });

  test(name('a malformed id in a body gets one detail saying UUID'), async (t) => {
    for (const bad of BAD_UUIDS) {
      saysUuidOnce(
        t,
        await app.request('POST', '/api/admin/credits', {
          token: admin.token,
          body: { user_id: bad, amount: 1, reason: 'test' },
        }),
        'user_id',
      );
    }
  });

  for (const [adapter, make] of Object.entries(USER_ADAPTERS)) {
    test(name(`[${adapter}] a port argument that is not a UUID gets one detail saying UUID`), async (t) => {
      const user = await t.throwsAsync<AppError>(make(app).getUser({ userId: 'not-a-uuid' }));
      t.is(user?.code, 'VALIDATION_ERROR');
      t.deepEqual(user?.details, [{ field: 'userId', message: 'userId must be a valid UUID' }]);
      const events = ADAPTERS[adapter as keyof typeof ADAPTERS](app);
      const seats = await t.throwsAsync<AppError>(events.getSeats({ seatIds: [randomUUID(), 'x'] }));
      t.is(seats?.code, 'VALIDATION_ERROR');
      t.deepEqual(seats?.details, [{ field: 'seatIds[1]', message: 'seatIds[1] must be a valid UUID' }]);
    });
  }
}
