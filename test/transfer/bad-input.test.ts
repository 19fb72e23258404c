import { randomUUID } from 'node:crypto';
import test from 'ava';
import { TARGETS, type TestApp } from '../helpers/app.js';
import { isError, MALFORMED_JSON } from '../helpers/assert.js';
import { HOSTILE } from '../helpers/bad-input.cases.js';
import { smallEvent } from '../helpers/events.js';
import { sharedAppWithOtp } from '../helpers/otp-catcher.js';
import { bought } from '../helpers/purchase.js';
import { codesOf, confirm, initiated, transferOf } from '../helpers/transfers.js';
import { grant, newUser, type TestUser } from '../helpers/users.js';

/**
 * Hostile and malformed input on every transfer route: each answers its 4xx in the envelope and
 * writes nothing (no transfer row, no ledger entry, no idempotency key, no code sent).
 */

/** Rows every transfer route could write, across the modules. */
async function written(app: TestApp) {
  const count = async (module: string, table: string) => {
    const db = app.kernel.databases.get(module)!;
    const [row] = await db.all<{ n: number | string }>(`select count(*) as n from ${db.table(table)}`);
    return Number(row.n);
  };
  return {
    transfers: await count('order', 'transfers'),
    ledger: await count('user', 'credit_transactions'),
    keys: await count('user', 'idempotency_keys'),
    codes: await count('user', 'otp_challenges'),
    sagas: await count('orchestrator', 'sagas'),
    approvals: await count('orchestrator', 'transfer_approvals'),
  };
}

for (const kind of TARGETS) {
  const { app, admin, otp } = sharedAppWithOtp(kind);
  const name = (s: string) => `[${kind}] ${s}`;

  test.serial(
    name('malformed, mistyped, hostile and oversized bodies on the transfer routes write nothing'),
    async (t) => {
      const event = await smallEvent(app, admin);
      const [seller, buyer]: TestUser[] = [await newUser(app), await newUser(app)];
      for (const u of [seller, buyer]) await grant(app, admin, u.userId, 500);
      const seat = event.seats[0].seat_id;
      await bought(app, seller, seat);
      const deal = { seat, seller, buyer, credits: 20 };
      const id = await initiated(app, deal);
      const codes = await codesOf(otp, id, deal);
      const valid: Record<string, Record<string, unknown>> = {
        initiate: { seat_id: seat, seller_user_id: seller.userId, buyer_user_id: buyer.userId, credits_amount: 20 },
        confirm: { transfer_id: id, seller_otp: codes.seller, buyer_otp: codes.buyer },
        dispute: { transfer_id: id, reason: 'why' },
        reverse: { transfer_id: id },
        resolve: { transfer_id: id },
      };
      const tokenOf = (route: string) => (route === 'reverse' || route === 'resolve' ? admin.token : seller.token);
      const before = await written(app);

      for (const [route, body] of Object.entries(valid)) {
        const path = `/api/transfer/${route}`;
        const send = (b: unknown, raw?: string) =>
          app.request('POST', path, {
            token: tokenOf(route),
            ...(raw !== undefined ? { raw, headers: { 'content-type': 'application/json' } } : { body: b }),
          });
        for (const raw of MALFORMED_JSON) isError(t, await send(undefined, raw), 400, 'VALIDATION_ERROR');
        for (const field of Object.keys(body)) {
          // A code may be left out (the flow tests show when): the other fields are required.
          if (!field.endsWith('_otp')) {
            const { [field]: _, ...without } = body;
            const res = await send(without);
            isError(t, res, 400, 'VALIDATION_ERROR');
            t.true(
              (res.body.details ?? []).some((d: { field: string }) => d.field === field),
              `${route} without ${field}: ${JSON.stringify(res.body)}`,
            );
          }
          const mistyped = typeof body[field] === 'number' ? [true, null, [], {}, '20'] : [1, true, null, [], {}];
          for (const wrong of [...mistyped, `${String(body[field])}\u0000`]) {
            const bad = await send({ ...body, [field]: wrong });
            t.is(bad.status, 400, `${route}.${field} = ${JSON.stringify(wrong)}: ${JSON.stringify(bad.body)}`);
          }
        }
        isError(t, await send({ ...body, is_admin: true }), 400, 'VALIDATION_ERROR');
        isError(
          t,
          await send(undefined, `{"__proto__": {"admin": true}, ${JSON.stringify(body).slice(1)}`),
          400,
          'VALIDATION_ERROR',
        );
        isError(
          t,
          await send(undefined, `{"constructor": {"prototype": {}}, ${JSON.stringify(body).slice(1)}`),
          400,
          'VALIDATION_ERROR',
        );
        const uuidField = Object.keys(body).find((f) => f.endsWith('_id'))!;
        for (const bad of ["' OR 1=1 --", randomUUID().toUpperCase().replace(/-/g, ''), `${randomUUID()}x`]) {
          isError(t, await send({ ...body, [uuidField]: bad }), 400, 'INVALID_UUID');
        }
        const huge = { ...body, [Object.keys(body).at(-1)!]: 'x'.repeat(70 * 1024) };
        isError(t, await send(huge), 413, 'PAYLOAD_TOO_LARGE');
        let deep: unknown = 'x';
        for (let i = 0; i < 40; i++) deep = { a: deep };
        isError(t, await send({ ...body, nested: deep }), 400, 'VALIDATION_ERROR');
        const noToken = await app.request('POST', path, { body });
        isError(t, noToken, 401, 'UNAUTHORIZED');
      }
      for (const amount of [0.001, 20.005, -0.01, 1e21, Number.MAX_SAFE_INTEGER, '20', Number.NaN]) {
        const res = await app.request('POST', '/api/transfer/initiate', {
          token: seller.token,
          body: { ...valid.initiate, credits_amount: amount },
        });
        isError(t, res, 400, 'VALIDATION_ERROR');
      }
      isError(t, await transferOf(app, seller, 'not-a-uuid'), 400, 'INVALID_UUID');
      isError(t, await app.request('GET', `/api/transfers/${id}`), 401, 'UNAUTHORIZED');
      t.deepEqual(await written(app), before, 'nothing was written by any refused request');

      // And the transfer is untouched: it still completes with its codes.
      t.is((await confirm(app, buyer, id, codes)).status, 200);
      t.like((await transferOf(app, buyer, id)).body.data, { status: 'COMPLETED' });
      // A reason that looks like SQL or a script is stored and shown as it was written.
      const hostile = `'; DROP TABLE transfers; -- <script>alert(1)</script> ${HOSTILE.join(' ')}`.slice(0, 500);
      const disputed = await app.request('POST', '/api/transfer/dispute', {
        token: buyer.token,
        body: { transfer_id: id, reason: hostile },
      });
      t.is(disputed.status, 200, JSON.stringify(disputed.body));
      t.is((await transferOf(app, admin, id)).body.data.dispute_reason, hostile);
    },
  );
}
