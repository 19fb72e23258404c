import type { Principal } from '../../kernel/auth.js';
import type { Clock } from '../../kernel/clock.js';
import type { Config } from '../../kernel/config.js';
import { AppError } from '../../kernel/errors.js';
import type { RequiredPorts } from '../../kernel/registry.js';
import type { ScanResult, ScanVerdict } from '../event/index.js';
import { openQr } from './qr.js';

type Ports = RequiredPorts<'user' | 'event'>;

export interface VerifyView {
  result: ScanResult;
  seat_id?: string;
  row_number?: string;
  seat_number?: number;
  owner_name?: string | null;
  scanned_at: string;
  message: string;
}

function message(v: ScanVerdict): string {
  const seat = v.rowNumber !== null ? `row ${v.rowNumber}, seat ${v.seatNumber}` : 'this seat';
  switch (v.result) {
    case 'SUCCESS':
      return `Welcome: ${seat} is checked in.`;
    case 'DUPLICATE':
      return `This ticket was already used: ${seat} was checked in at ${v.checkedInAt}.`;
    case 'UNPAID':
      return `This ticket is not paid for: ${seat} is not sold.`;
    case 'NOT_FOUND':
      return 'No such seat: this QR code names a seat we do not know.';
    case 'WRONG_HALL':
      return `Wrong hall: this ticket is for hall ${v.expectedHall}.`;
    case 'EXPIRED':
      return 'This QR code has expired: ask for the current code in the app (it changes every minute).';
    case 'NOT_OWNER':
      return 'This QR code was made by someone who no longer holds the ticket.';
  }
}

/**
 * Verification at the door. The QR is opened here (AES-256-GCM; anything else is 400 QR_INVALID)
 * and checked for age; the seat's verdict is then the event module's single conditional UPDATE,
 * which checks the seat in only while it is SOLD to the QR's user and in the presented hall, and
 * logs the scan with its result either way. The QR's user is read at the same time, for the name
 * the staff see.
 */
export function createVerification({ user, event }: Ports, config: Config, clock: Clock) {
  const ttlMs = config.qrTtlSeconds * 1000;
  return {
    async verify(principal: Principal, body: { qr_payload: string; hall_id: string }): Promise<VerifyView> {
      const qr = openQr(config.qrEncryptionKey, body.qr_payload);
      if (!qr) throw new AppError('QR_INVALID', 'This QR code cannot be read: it is not ours, or it was altered.');
      const scan = { seatId: qr.seat_id, staffId: principal.userId, presentedHall: body.hall_id };
      // Dated in the future by more than a TTL is no code of ours either: it is treated as expired.
      const age = clock.now() - Date.parse(qr.generated_at);
      const expired = age > ttlMs || age < -ttlMs;
      const [verdict, holder] = await Promise.all([
        expired
          ? event.logScan({ ...scan, result: 'EXPIRED' })
          : event.checkIn({ ...scan, expectedOwnerId: qr.user_id }),
        // Only for the name on the staff's screen: a user module that cannot answer costs the name, not the scan.
        expired ? undefined : user.getUser({ userId: qr.user_id }).catch(() => undefined),
      ]);
      const ownersCode = holder !== undefined && verdict.ownerUserId === qr.user_id;
      // The seat exists (it has an event): only then does the answer name it.
      const known = verdict.eventId !== null;
      return {
        result: verdict.result,
        ...(known ? { seat_id: verdict.seatId } : {}),
        ...(verdict.rowNumber !== null ? { row_number: verdict.rowNumber } : {}),
        ...(verdict.seatNumber !== null ? { seat_number: verdict.seatNumber } : {}),
        ...(ownersCode ? { owner_name: holder.fullName } : {}),
        scanned_at: verdict.scannedAt,
        message: message(verdict),
      };
    },
  };
}

export type Verification = ReturnType<typeof createVerification>;
