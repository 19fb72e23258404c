import { randomUUID } from 'node:crypto';
import test from 'ava';
import type { AppError } from '../../src/kernel/errors.js';
import { DATABASES, sharedApp } from '../helpers/app.js';
import { BAD_UUIDS, isInvalid } from '../helpers/assert.js';
import { claimsOf } from '../helpers/tokens.js';
import { newUser, USER_ADAPTERS } from '../helpers/users.js';

for (const kind of DATABASES) {
  const app = sharedApp(kind);

  for (const [adapter, make] of Object.entries(USER_ADAPTERS)) {
    const name = (s: string) => `[${kind}/${adapter}] ${s}`;

    test(name('isSessionActive with a sid or userId that is not a UUID is VALIDATION_ERROR naming it'), async (t) => {
      const port = make(app);
      const u = await newUser(app);
      const sid = claimsOf(u.token).sid as string;
      for (const bad of [...BAD_UUIDS, 'x'.repeat(64)]) {
        for (const [field, args] of [
          ['sid', { sid: bad, userId: u.userId }],
          ['userId', { sid, userId: bad }],
        ] as const) {
          const err = await t.throwsAsync<AppError>(port.isSessionActive(args), undefined, `${field}: ${bad}`);
          t.is(err?.code, 'VALIDATION_ERROR', `${field}: ${bad}: ${err?.message}`);
          t.deepEqual(
            err?.details?.map((d) => d.field),
            [field],
            `${field}: ${bad}`,
          );
        }
      }
      t.deepEqual(await port.isSessionActive({ sid, userId: u.userId }), { active: true, role: 'customer' });
    });

    test(name('isSessionActive reads an id in upper case as the same id'), async (t) => {
      const port = make(app);
      const u = await newUser(app);
      const sid = claimsOf(u.token).sid as string;
      const upper = { sid: sid.toUpperCase(), userId: u.userId.toUpperCase() };
      t.deepEqual(await port.isSessionActive(upper), { active: true, role: 'customer' });
      t.deepEqual(await port.isSessionActive({ sid: randomUUID(), userId: u.userId }), { active: false });
    });
  }

  test(`[${kind}] the internal isSessionActive route answers a malformed sid with 400 VALIDATION_ERROR`, async (t) => {
    const u = await newUser(app);
    const res = await app.request('POST', '/internal/user/isSessionActive', {
      headers: { 'x-service-token': app.kernel.config.serviceToken },
      body: { sid: "' OR 1=1 --", userId: u.userId },
    });
    isInvalid(t, res, 'sid');
  });
}
