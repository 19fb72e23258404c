import { randomUUID } from 'node:crypto';
import test from 'ava';
import { createHttpPort } from '../../src/kernel/ports.js';
import type { EventPort } from '../../src/modules/event/index.js';
import { eventPortDefinition } from '../../src/modules/event/index.js';
import { DATABASES } from '../helpers/app.js';
import { rejects } from '../helpers/assert.js';
import { ADAPTERS, holdOne, scansOf, seatRow, sellSeat, smallEvent } from '../helpers/events.js';
import { sharedAppWithAdmin } from '../helpers/users.js';

/**
 * The event port's contract, continued: the door (checkIn, logScan), argument checks and the
 * service credential, against both adapters on every database.
 */

for (const kind of DATABASES) {
  const { app, admin } = sharedAppWithAdmin(kind, { SWEEP_INTERVAL_MS: '3600000' });

  const small = () => smallEvent(app, admin);

  for (const [adapter, make] of Object.entries(ADAPTERS)) {
    const name = (s: string) => `[${kind}/${adapter}] ${s}`;
    test(name('checkIn decides by the documented rule order and logs every scan once'), async (t) => {
      const port = make(app);
      const e = await small();
      const [a1, a2, a3] = e.seats.map((s) => s.seat_id);
      const staff = randomUUID();
      const { userId: owner } = await sellSeat(port, a1);
      const heldBy = await holdOne(port, a2);
      const stranger = randomUUID();
      const ghost = randomUUID();

      const steps: [string, string, string, string][] = [
        [ghost, owner, 'HALL-A', 'NOT_FOUND'],
        [a3, stranger, 'HALL-X', 'UNPAID'], // AVAILABLE, even with the wrong owner and hall
        [a2, heldBy.userId, 'HALL-X', 'UNPAID'], // HELD
        [a1, stranger, 'HALL-X', 'NOT_OWNER'], // before the hall is looked at
        [a1, owner, 'HALL-X', 'WRONG_HALL'],
        [a1, owner, 'HALL-A', 'SUCCESS'],
        [a1, stranger, 'HALL-X', 'DUPLICATE'], // checked in beats every other rule
        [a1, owner, 'HALL-A', 'DUPLICATE'],
      ];
      const logged = new Map<string, string[]>();
      for (const [seatId, expectedOwnerId, presentedHall, expected] of steps) {
        const v = await port.checkIn({ seatId, expectedOwnerId, staffId: staff, presentedHall });
        t.is(v.result as string, expected, `${seatId === ghost ? 'unknown' : seatId} ${presentedHall}`);
        t.regex(v.scannedAt, /Z$/);
        logged.set(seatId, [...(logged.get(seatId) ?? []), expected]);
        const rows = await scansOf(app, seatId);
        t.deepEqual(
          rows.map((r) => r.result),
          logged.get(seatId),
          'one scan-log row per call',
        );
        t.like(rows.at(-1), { staff_user_id: staff, presented_hall: presentedHall });
      }
      const none = await scansOf(app, ghost);
      t.is(none[0].expected_hall, null);
      const wrong = (await scansOf(app, a1)).find((r) => r.result === 'WRONG_HALL');
      t.is(wrong?.expected_hall, 'HALL-A');

      const seat = await port.getSeat({ seatId: a1 });
      t.like(seat, { status: 'CHECKED_IN', ownerUserId: owner });
      t.true(Math.abs(Date.parse(seat.checkedInAt!) - Date.now()) < 60_000);
      const dup = await port.checkIn({ seatId: a1, expectedOwnerId: owner, staffId: staff, presentedHall: 'HALL-A' });
      t.like(dup, {
        result: 'DUPLICATE',
        seatId: a1,
        eventId: e.eventId,
        rowNumber: 'A',
        seatNumber: 1,
        ownerUserId: owner,
        expectedHall: 'HALL-A',
        checkedInAt: seat.checkedInAt,
      });
      const unknown = await port.checkIn({ seatId: ghost, expectedOwnerId: owner, staffId: staff, presentedHall: 'H' });
      t.like(unknown, { result: 'NOT_FOUND', eventId: null, rowNumber: null, seatNumber: null, expectedHall: null });
    });

    test(name('logScan records a verdict decided before the seat was read (EXPIRED)'), async (t) => {
      const port = make(app);
      const e = await small();
      const { userId: owner } = await sellSeat(port, e.seats[0].seat_id);
      const staff = randomUUID();
      const seatId = e.seats[0].seat_id;
      const v = await port.logScan({ seatId, staffId: staff, presentedHall: 'HALL-A', result: 'EXPIRED' });
      t.like(v, { result: 'EXPIRED', seatId, eventId: e.eventId, ownerUserId: owner, expectedHall: 'HALL-A' });
      t.deepEqual(await scansOf(app, seatId), [
        { result: 'EXPIRED', staff_user_id: staff, presented_hall: 'HALL-A', expected_hall: 'HALL-A' },
      ]);
      t.like(await seatRow(app, seatId), { status: 'SOLD', checked_in_at: null }, 'the seat is untouched');
      const ghost = randomUUID();
      t.like(await port.logScan({ seatId: ghost, staffId: staff, presentedHall: 'HALL-A', result: 'EXPIRED' }), {
        result: 'EXPIRED',
        eventId: null,
      });
      t.is((await scansOf(app, ghost)).length, 1);
    });

    test(name('malformed arguments are VALIDATION_ERROR and change nothing'), async (t) => {
      const port = make(app);
      const e = await small();
      const seatId = e.seats[0].seat_id;
      const ok = { seatIds: [seatId], userId: randomUUID(), orderId: randomUUID(), ttlSeconds: 60, holdLimit: 10 };
      const sale = { orderId: ok.orderId, userId: ok.userId };
      const many = (n: number) => Array.from({ length: n }, () => randomUUID());
      const bad: [string, () => Promise<unknown>][] = [
        ['ttl 0', () => port.holdSeats({ ...ok, ttlSeconds: 0 })],
        ['ttl 1.5', () => port.holdSeats({ ...ok, ttlSeconds: 1.5 })],
        ['ttl string', () => port.holdSeats({ ...ok, ttlSeconds: '60' as unknown as number })],
        ['ttl a day and a second', () => port.holdSeats({ ...ok, ttlSeconds: 86_401 })],
        ['seat id', () => port.holdSeats({ ...ok, seatIds: ['seat-1'] })],
        ['seat ids not a list', () => port.holdSeats({ ...ok, seatIds: seatId as never })],
        ['no seats', () => port.holdSeats({ ...ok, seatIds: [] })],
        ['a seat twice', () => port.holdSeats({ ...ok, seatIds: [seatId, seatId] })],
        ['101 seats', () => port.holdSeats({ ...ok, seatIds: [seatId, ...many(100)] })],
        ['user id', () => port.holdSeats({ ...ok, userId: `${randomUUID()}0` })],
        ['missing order', () => port.holdSeats({ ...ok, orderId: undefined } as never)],
        ['hold limit 0', () => port.holdSeats({ ...ok, holdLimit: 0 })],
        ['missing hold limit', () => port.holdSeats({ ...ok, holdLimit: undefined } as never)],
        ['extra field', () => port.holdSeats({ ...ok, status: 'SOLD' } as never)],
        ['price negative', () => port.confirmOrder({ ...sale, seats: [{ seatId, pricePaid: -1 }] })],
        ['price fraction', () => port.confirmOrder({ ...sale, seats: [{ seatId, pricePaid: 1.5 }] })],
        ['no seats to confirm', () => port.confirmOrder({ ...sale, seats: [] })],
        [
          'a seat confirmed twice',
          () =>
            port.confirmOrder({
              ...sale,
              seats: [
                { seatId, pricePaid: 1 },
                { seatId, pricePaid: 2 },
              ],
            }),
        ],
        ['release id', () => port.releaseOrder({ orderId: "' OR 1=1 --" })],
        ['owner id', () => port.setOwner({ seatId, expectedOwnerId: 'x', newOwnerId: randomUUID(), key: 'k' })],
        [
          'empty hall',
          () => port.checkIn({ seatId, expectedOwnerId: ok.userId, staffId: ok.userId, presentedHall: '' }),
        ],
        [
          'long hall',
          () => port.checkIn({ seatId, expectedOwnerId: ok.userId, staffId: ok.userId, presentedHall: 'H'.repeat(51) }),
        ],
        [
          'unknown verdict',
          () => port.logScan({ seatId, staffId: ok.userId, presentedHall: 'HALL-A', result: 'MAYBE' as never }),
        ],
        ['seat ids not a list', () => port.getSeats({ seatIds: seatId as never })],
        ['too many seat ids', () => port.getSeats({ seatIds: Array.from({ length: 1001 }, () => randomUUID()) })],
        ['bad seat id in list', () => port.getSeats({ seatIds: [seatId, 'nope'] })],
        ['event id', () => port.getEvent({ eventId: 'nope' })],
        ['no args', () => port.getSeat(undefined as never)],
      ];
      for (const [what, call] of bad) {
        const err = (await t.throwsAsync(call, undefined, what)) as { code?: string } | undefined;
        t.is(err?.code, 'VALIDATION_ERROR', what);
      }
      t.like(await seatRow(app, seatId), { status: 'AVAILABLE', held_by_user_id: null, owner_user_id: null });
      t.deepEqual(await scansOf(app, seatId), []);
    });
  }

  test(`[${kind}] internal event routes refuse callers without the service credential`, async (t) => {
    const e = await small();
    const seatId = e.seats[0].seat_id;
    const body = { seatIds: [seatId], userId: randomUUID(), orderId: randomUUID(), ttlSeconds: 60, holdLimit: 10 };
    for (const headers of [{}, { 'x-service-token': 'wrong' }] as Record<string, string>[]) {
      const res = await app.request('POST', '/internal/event/holdSeats', { headers, body });
      t.is(res.status, 401);
      t.is(res.body.error_code, 'UNAUTHORIZED');
    }
    const wrong = createHttpPort<EventPort>(eventPortDefinition, app.url, 'x'.repeat(40));
    await rejects(t, wrong.holdSeats(body), 'UNAUTHORIZED');
    t.like(await seatRow(app, seatId), { status: 'AVAILABLE', held_by_user_id: null });
  });
}
