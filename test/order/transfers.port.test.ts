import { randomUUID } from 'node:crypto';
import test from 'ava';
import { manualClock } from '../../src/kernel/clock.js';
import type { OrderPort } from '../../src/modules/order/index.js';
import { DATABASES, sharedApp } from '../helpers/app.js';
import { rejects } from '../helpers/assert.js';
import { ORDER_ADAPTERS } from '../helpers/orders.js';

/**
 * The order port's transfer methods, against the in-process and the HTTP adapter on every
 * database: creation and its refusals, the state machine's moves and their repeats, the
 * confirm's claim, and codes that run out (a transfer under way reads FAILED at once, and the
 * sweeper writes it so).
 */

const TRANSFER_KEYS = [
  'buyerUserId',
  'completedAt',
  'createdAt',
  'creditsAmount',
  'disputeReason',
  'expiresAt',
  'frozenAmount',
  'initiatedBy',
  'orderId',
  'seatId',
  'sellerUserId',
  'status',
  'transferId',
  'updatedAt',
];

for (const kind of DATABASES) {
  const clock = manualClock();
  const app = sharedApp(kind, { env: { SWEEP_INTERVAL_MS: '3600000' }, clock });
  const args = (seatId = randomUUID()) => ({
    transferId: randomUUID(),
    seatId,
    orderId: randomUUID(),
    sellerUserId: randomUUID(),
    buyerUserId: randomUUID(),
    creditsAmount: 5000,
    initiatedBy: 'SELLER' as const,
    expiresAt: new Date(clock.now() + 300_000).toISOString(),
  });

  for (const [adapter, make] of Object.entries(ORDER_ADAPTERS)) {
    const name = (s: string) => `[${kind}/${adapter}] ${s}`;

    test(
      name('createTransfer records an INITIATED transfer; a repeat answers it; a second one for the seat is refused'),
      async (t) => {
        const port: OrderPort = make(app);
        const a = args();
        const created = await port.createTransfer(a);
        t.deepEqual(Object.keys(created).sort(), TRANSFER_KEYS);
        t.like(created, {
          transferId: a.transferId,
          seatId: a.seatId,
          status: 'INITIATED',
          creditsAmount: 5000,
          frozenAmount: null,
          disputeReason: null,
          completedAt: null,
          expiresAt: a.expiresAt,
        });
        t.deepEqual(await port.createTransfer(a), created, 'a repeat answers the transfer');
        t.deepEqual(await port.getTransfer({ transferId: a.transferId }), created);
        await rejects(t, port.createTransfer({ ...a, creditsAmount: 1 }), 'VALIDATION_ERROR');
        await rejects(t, port.createTransfer({ ...args(a.seatId) }), 'TRANSFER_IN_PROGRESS');
        await rejects(
          t,
          port.createTransfer({ ...args(), buyerUserId: a.sellerUserId, sellerUserId: a.sellerUserId }),
          'SELF_TRANSFER',
        );
        await rejects(t, port.getTransfer({ transferId: randomUUID() }), 'TRANSFER_NOT_FOUND');
      },
    );

    test(
      name('updateTransfer moves along the state machine once; a repeat changes nothing; other moves are refused'),
      async (t) => {
        const port: OrderPort = make(app);
        const a = args();
        await port.createTransfer(a);
        const id = a.transferId;
        const until = new Date(clock.now() + 120_000).toISOString();
        const pending = await port.updateTransfer({
          transferId: id,
          from: 'INITIATED',
          to: 'PENDING_OTP',
          expiresAt: until,
        });
        t.like(pending, { changed: true, transfer: { status: 'PENDING_OTP', expiresAt: until } });
        t.like(await port.updateTransfer({ transferId: id, from: 'INITIATED', to: 'PENDING_OTP', expiresAt: until }), {
          changed: false,
          transfer: { status: 'PENDING_OTP' },
        });
        // The claim clears the expiry, once; a transfer claimed is no longer cancelled by a caller outside its confirm.
        const claim = { transferId: id, from: 'PENDING_OTP', to: 'PENDING_OTP', expiresAt: null } as const;
        t.like(await port.updateTransfer(claim), { changed: true, transfer: { expiresAt: null } });
        t.like(await port.updateTransfer(claim), { changed: false });
        t.like(await port.updateTransfer({ transferId: id, from: 'PENDING_OTP', to: 'FAILED', unclaimed: true }), {
          changed: false,
          transfer: { status: 'PENDING_OTP' },
        });
        const done = await port.updateTransfer({ transferId: id, from: 'PENDING_OTP', to: 'COMPLETED' });
        t.like(done, { changed: true, transfer: { status: 'COMPLETED' } });
        t.truthy(done.transfer.completedAt);
        const dispute = {
          transferId: id,
          from: 'COMPLETED',
          to: 'DISPUTED',
          disputeReason: 'wrong seat',
          frozenAmount: 3000,
        } as const;
        t.like(await port.updateTransfer(dispute), {
          changed: true,
          transfer: { status: 'DISPUTED', disputeReason: 'wrong seat', frozenAmount: 3000 },
        });
        t.like(await port.updateTransfer({ transferId: id, from: 'DISPUTED', to: 'COMPLETED' }), {
          changed: true,
          transfer: { status: 'COMPLETED', completedAt: done.transfer.completedAt },
        });
        // A decided dispute is not opened again.
        t.like(await port.updateTransfer(dispute), {
          changed: false,
          transfer: { status: 'COMPLETED', frozenAmount: 3000 },
        });
        for (const [from, to] of [
          ['COMPLETED', 'FAILED'],
          ['COMPLETED', 'REVERSED'],
          ['REVERSED', 'COMPLETED'],
          ['FAILED', 'PENDING_OTP'],
          ['INITIATED', 'COMPLETED'],
        ] as const) {
          await rejects(t, port.updateTransfer({ transferId: id, from, to }), 'VALIDATION_ERROR');
        }
      },
    );

    test.serial(
      name('a transfer under way whose codes ran out reads FAILED, frees its seat, and the sweeper writes it'),
      async (t) => {
        const port: OrderPort = make(app);
        const a = args();
        await port.createTransfer(a);
        await port.updateTransfer({
          transferId: a.transferId,
          from: 'INITIATED',
          to: 'PENDING_OTP',
          expiresAt: a.expiresAt,
        });
        const other = args();
        await port.createTransfer(other);
        clock.advance(300_001);
        t.like(await port.getTransfer({ transferId: a.transferId }), { status: 'FAILED' });
        // Too late to claim.
        t.like(
          await port.updateTransfer({
            transferId: a.transferId,
            from: 'PENDING_OTP',
            to: 'PENDING_OTP',
            expiresAt: null,
          }),
          { changed: false },
        );
        // A new transfer of the seat may start at once; the old one is written FAILED on the way.
        const next = await port.createTransfer(args(a.seatId));
        t.is(next.status, 'INITIATED');
        const db = app.kernel.databases.get('order')!;
        const stored = async (id: string) =>
          (await db.all<{ status: string }>(`select status from ${db.table('transfers')} where id = ?`, [id]))[0]
            .status;
        t.is(await stored(a.transferId), 'FAILED');
        t.is(await stored(other.transferId), 'INITIATED');
        await app.kernel.jobs.run('order', 'transfer-sweeper');
        t.is(await stored(other.transferId), 'FAILED', 'the sweeper ends the other one');
        t.is(await stored(next.transferId), 'INITIATED', 'and leaves the live one');
      },
    );
  }
}
