import type { Config } from '../../kernel/config.js';
import { idempotencyKeyHeader } from '../../kernel/idempotency.js';
import { type RateLimits, rateLimit } from '../../kernel/ratelimit.js';
import { createApiRouter } from '../../kernel/routing.js';
import * as s from './orchestrator.schemas.js';
import type { Purchase } from './purchase.js';
import type { Tickets } from './tickets.js';
import type { Transfers } from './transfers.js';
import type { Verification } from './verification.js';

/** Reserve, pay and the one-time passwords of purchases and transfers. */
export function purchaseRoutes(purchase: Purchase, transfers: Transfers, config: Config, limits: RateLimits) {
  const api = createApiRouter('orchestrator', 'Purchase');

  api.route(
    'post',
    '/api/reserve',
    {
      summary: 'Hold one seat or several seats of one event for a few minutes, as one order',
      description:
        `All or nothing: when any seat cannot be held, none is, and \`details\` names each refused seat. ` +
        `A user holds at most MAX_HELD_SEATS_PER_USER seats across live orders. Repeating a reserve of exactly ` +
        `the seats of your own live order answers that order.`,
      access: 'user',
      status: 200,
      body: s.reserveBody(config.maxSeatsPerOrder),
      response: s.reserveView,
      errors: [
        'INVALID_UUID',
        'FORBIDDEN',
        'USER_NOT_FOUND',
        'SEAT_NOT_FOUND',
        'EVENT_ENDED',
        'SEAT_ALREADY_SOLD',
        'SEAT_UNAVAILABLE',
        'HOLD_LIMIT_REACHED',
        'SERVICE_UNAVAILABLE',
      ],
    },
    ({ principal, body }) => purchase.reserve(principal, body),
  );

  api.route(
    'post',
    '/api/pay',
    {
      summary: 'Pay for a held order with credits: every seat becomes yours, or none does',
      description:
        'The total is charged once. With an Idempotency-Key, a repeat answers the first answer. A flagged ' +
        'account gets 428 OTP_REQUIRED and a code by SMS; verify it with /api/verify-otp, then pay again.',
      access: 'user',
      status: 200,
      headers: idempotencyKeyHeader,
      body: s.payBody,
      response: s.payView,
      errors: [
        'INVALID_UUID',
        'ORDER_NOT_FOUND',
        'ORDER_ALREADY_CONFIRMED',
        'HOLD_EXPIRED',
        'SEAT_NOT_HELD',
        'INSUFFICIENT_CREDITS',
        'OTP_REQUIRED',
        'IDEMPOTENCY_CONFLICT',
        'SERVICE_UNAVAILABLE',
      ],
    },
    ({ principal, body, headers }) => purchase.pay(principal, body.order_id, headers['idempotency-key']),
  );

  api.route(
    'post',
    '/api/verify-otp',
    {
      summary: 'Verify a one-time password for a purchase or a transfer',
      description:
        'For a purchase, `reference_id` is the order: pay then goes on. For a transfer it is the transfer, and the ' +
        'code is the caller’s own: `/api/transfer/confirm` may then leave it out. Three wrong codes per ' +
        '(user, reference) cancel the flow: the order ends FAILED (its seats released), or the transfer FAILED.',
      access: 'user',
      status: 200,
      body: s.verifyOtpBody,
      response: s.verifiedView,
      errors: [
        'INVALID_UUID',
        'ORDER_NOT_FOUND',
        'TRANSFER_NOT_FOUND',
        'OTP_INVALID',
        'OTP_EXPIRED',
        'OTP_MAX_RETRIES',
        'TRANSFER_INVALID_STATE',
        'RATE_LIMITED',
        'SERVICE_UNAVAILABLE',
      ],
      before: [rateLimit(limits, config, 'verify-otp')],
    },
    ({ principal, body }) =>
      body.context === 'transfer'
        ? transfers.verifyOtp(principal, body.reference_id, body.otp_code)
        : purchase.verifyOtp(principal, body.reference_id, body.otp_code),
  );

  return api;
}

/** The caller's tickets and their QR codes. */
export function ticketRoutes(tickets: Tickets) {
  const api = createApiRouter('orchestrator', 'Tickets');

  api.route(
    'get',
    '/api/tickets',
    {
      summary: 'The tickets you own now: one per seat',
      access: 'user',
      paginated: true,
      response: s.ticketView,
      errors: ['SERVICE_UNAVAILABLE'],
    },
    async ({ principal, page }) => {
      const all = await tickets.list(principal);
      return { items: all.slice(page.offset, page.offset + page.perPage), total: all.length };
    },
  );

  api.route(
    'get',
    '/api/tickets/:seat_id/qr',
    {
      summary: 'A QR code for the door, valid for QR_TTL_SECONDS',
      description:
        'JSON by default; `?format=svg` answers image/svg+xml and `?format=png` image/png of the same payload.',
      access: 'user',
      params: s.seatParams,
      query: s.qrQuery,
      response: s.qrView,
      errors: ['INVALID_UUID', 'SEAT_NOT_FOUND', 'NOT_SEAT_OWNER', 'SEAT_UNAVAILABLE', 'SERVICE_UNAVAILABLE'],
    },
    async ({ principal, params, query, ctx }) => {
      const qr = await tickets.qr(principal, params.seat_id);
      if (query.format === 'json') return qr;
      ctx.set('Cache-Control', 'no-store');
      ctx.type = query.format === 'svg' ? 'image/svg+xml' : 'image/png';
      ctx.body = await tickets.image(qr.qr_payload, query.format);
      return undefined;
    },
  );

  return api;
}

/** Verification at the door, for staff. */
export function verifyRoutes(verification: Verification) {
  const api = createApiRouter('orchestrator', 'Verification');

  api.route(
    'post',
    '/api/verify',
    {
      summary: 'Scan a ticket at the door: the verdict, and the seat checked in on SUCCESS',
      description:
        'The first rule that applies decides: a QR older than QR_TTL_SECONDS is EXPIRED; then NOT_FOUND, ' +
        'DUPLICATE (already checked in), UNPAID (not sold), NOT_OWNER (the code was made by someone who no ' +
        'longer owns the seat), WRONG_HALL (the message names the right hall), else SUCCESS. Every verdict is ' +
        'a 200 and is logged with the staff member; only a payload that does not decrypt is 400 QR_INVALID. ' +
        'Two gates scanning one ticket at once get one SUCCESS and one DUPLICATE.',
      access: ['staff', 'admin'],
      status: 200,
      body: s.verifyBody,
      response: s.verifyView,
      errors: ['QR_INVALID', 'SERVICE_UNAVAILABLE'],
    },
    ({ principal, body }) => verification.verify(principal, body),
  );

  return api;
}

/** Transfers of a ticket between two users, with a code on both sides, and their disputes. */
export function transferRoutes(transfers: Transfers, config: Config, limits: RateLimits) {
  const api = createApiRouter('orchestrator', 'Transfers');

  api.route(
    'post',
    '/api/transfer/initiate',
    {
      summary: 'Start a transfer of a ticket you sell or buy: both parties get a code by SMS',
      description:
        'The caller is the seller (the owner) or the buyer. Nothing is written unless every check passes: ' +
        'two distinct users who exist, a seat the seller owns, still SOLD (not used), a buyer with the credits, ' +
        'and no other transfer of the seat under way (two initiations at once: one 201, one 409 ' +
        'TRANSFER_IN_PROGRESS). Confirm before `expires_at`, when the codes expire, or the transfer ends FAILED.',
      access: 'user',
      status: 201,
      body: s.initiateBody,
      response: s.initiateView,
      errors: [
        'INVALID_UUID',
        'SELF_TRANSFER',
        'FORBIDDEN',
        'USER_NOT_FOUND',
        'SEAT_NOT_FOUND',
        'NOT_SEAT_OWNER',
        'SEAT_UNAVAILABLE',
        'INSUFFICIENT_CREDITS',
        'TRANSFER_IN_PROGRESS',
        'RATE_LIMITED',
        'SERVICE_UNAVAILABLE',
      ],
      before: [rateLimit(limits, config, 'transfer-initiate')],
    },
    ({ principal, body }) => transfers.initiate(principal, body),
  );

  api.route(
    'post',
    '/api/transfer/confirm',
    {
      summary: 'Confirm a transfer with both codes: the credits and the ticket change hands together',
      description:
        'Either party may call it. Both codes are checked before anything moves; a party who verified its ' +
        'code through /api/verify-otp may leave it out. A wrong code counts against its party only; the third ' +
        'ends the transfer FAILED (429 OTP_MAX_RETRIES). A buyer who has spent the credits meanwhile gets 402 ' +
        'INSUFFICIENT_CREDITS and the transfer ends FAILED. Two confirms at once: it completes once, the other ' +
        'gets 409 TRANSFER_INVALID_STATE. QR codes the seller made stop working at once.',
      access: 'user',
      status: 200,
      body: s.confirmBody,
      response: s.confirmView,
      errors: [
        'INVALID_UUID',
        'FORBIDDEN',
        'TRANSFER_NOT_FOUND',
        'TRANSFER_INVALID_STATE',
        'OTP_INVALID',
        'OTP_EXPIRED',
        'OTP_MAX_RETRIES',
        'INSUFFICIENT_CREDITS',
        'SEAT_UNAVAILABLE',
        'NOT_SEAT_OWNER',
        'RATE_LIMITED',
        'SERVICE_UNAVAILABLE',
      ],
      before: [rateLimit(limits, config, 'transfer-confirm')],
    },
    ({ principal, body }) => transfers.confirm(principal, body),
  );

  api.route(
    'post',
    '/api/transfer/dispute',
    {
      summary: 'Dispute a completed transfer, as its seller or buyer',
      description:
        'Up to the transferred amount of the seller’s spendable credits is frozen until an admin reverses the ' +
        'transfer or rejects the dispute. A transfer is disputed at most once.',
      access: 'user',
      status: 200,
      body: s.disputeBody,
      response: s.disputeView,
      errors: ['INVALID_UUID', 'FORBIDDEN', 'TRANSFER_NOT_FOUND', 'TRANSFER_INVALID_STATE', 'SERVICE_UNAVAILABLE'],
    },
    ({ principal, body }) => transfers.dispute(principal, body),
  );

  api.route(
    'post',
    '/api/transfer/reverse',
    {
      summary: 'Reverse a disputed transfer: the ticket back to the seller, the frozen credits to the buyer',
      description:
        '`credits_returned` is what the dispute froze. 409 SEAT_UNAVAILABLE, with nothing changed, when the buyer ' +
        'no longer holds the ticket (used at the door or passed on).',
      access: ['admin'],
      status: 200,
      body: s.transferIdBody,
      response: s.reverseView,
      errors: [
        'INVALID_UUID',
        'TRANSFER_NOT_FOUND',
        'TRANSFER_INVALID_STATE',
        'SEAT_UNAVAILABLE',
        'SERVICE_UNAVAILABLE',
      ],
    },
    ({ principal, body }) => transfers.reverse(principal, body.transfer_id),
  );

  api.route(
    'post',
    '/api/transfer/resolve',
    {
      summary: 'Reject a dispute: the transfer stands and the frozen credits are the seller’s again',
      access: ['admin'],
      status: 200,
      body: s.transferIdBody,
      response: s.resolveView,
      errors: ['INVALID_UUID', 'TRANSFER_NOT_FOUND', 'TRANSFER_INVALID_STATE', 'SERVICE_UNAVAILABLE'],
    },
    ({ principal, body }) => transfers.resolve(principal, body.transfer_id),
  );

  return api;
}
