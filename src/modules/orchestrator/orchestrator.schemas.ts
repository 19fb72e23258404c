import Joi from 'joi';
import { money, uuid } from '../../kernel/schemas.js';
import { SCAN_RESULTS } from '../event/index.js';

const creditsNumber = Joi.number().description('credits, exact to the cent');
const isoTime = Joi.string().isoDate();

/** One of `seat_id` or `seat_ids` (1 to `maxSeats` distinct seats of one event). */
export const reserveBody = (maxSeats: number) =>
  Joi.object({
    seat_id: uuid(),
    seat_ids: Joi.array()
      .items(uuid())
      .min(1)
      .max(maxSeats)
      .unique()
      .messages({ 'array.unique': 'seat_ids lists a seat twice' }),
    user_id: uuid().description('the buyer: yourself unless you are an admin'),
  })
    .xor('seat_id', 'seat_ids')
    .messages({
      'object.missing': 'give seat_id or seat_ids',
      'object.xor': 'give seat_id or seat_ids, not both',
    })
    // Seat ids come from GET /api/events/{event_id}; these name no seat.
    .example({ seat_ids: ['7b0e3f7c-2d4a-4c1e-9b8a-5f6e7d8c9a0b', '7b0e3f7c-2d4a-4c1e-9b8a-5f6e7d8c9a0c'] });

export const payBody = Joi.object({ order_id: uuid().required() }).example({
  order_id: '01937a4e-0c5d-7e2f-8a1b-3c4d5e6f7a8b',
});

export const verifyOtpBody = Joi.object({
  otp_code: Joi.string()
    .pattern(/^\d{6}$/)
    .required()
    .messages({ 'string.pattern.base': 'otp_code is six digits' }),
  context: Joi.string().valid('purchase', 'transfer').required(),
  reference_id: uuid().required(),
}).example({ otp_code: '123456', context: 'purchase', reference_id: '01937a4e-0c5d-7e2f-8a1b-3c4d5e6f7a8b' });

export const seatParams = Joi.object({ seat_id: uuid().required() });
export const qrQuery = Joi.object({ format: Joi.string().valid('json', 'svg', 'png').default('json') });

const seatView = Joi.object({
  seat_id: Joi.string().uuid(),
  row_number: Joi.string(),
  seat_number: Joi.number().integer(),
  category: Joi.string(),
  price: creditsNumber,
});

export const reserveView = Joi.object({
  order_id: Joi.string().uuid(),
  seat_id: Joi.string().uuid().description('the first of seat_ids'),
  seat_ids: Joi.array().items(Joi.string().uuid()),
  event_id: Joi.string().uuid(),
  status: Joi.string().valid('HELD'),
  price: creditsNumber.description('the order total'),
  seats: Joi.array().items(seatView),
  held_until: isoTime,
  ttl_seconds: Joi.number().integer(),
  message: Joi.string(),
});

export const payView = Joi.object({
  order_id: Joi.string().uuid(),
  seat_id: Joi.string().uuid(),
  seat_ids: Joi.array().items(Joi.string().uuid()),
  status: Joi.string().valid('CONFIRMED'),
  credits_charged: creditsNumber,
  remaining_balance: creditsNumber,
  message: Joi.string(),
});

export const verifiedView = Joi.object({ verified: Joi.boolean().valid(true), message: Joi.string() });

export const ticketView = Joi.object({
  seat_id: Joi.string().uuid(),
  order_id: Joi.string().uuid().allow(null),
  event: Joi.object({
    event_id: Joi.string().uuid(),
    name: Joi.string(),
    event_date: isoTime,
    hall_id: Joi.string(),
    venue_name: Joi.string(),
  }),
  row_number: Joi.string(),
  seat_number: Joi.number().integer(),
  category: Joi.string(),
  status: Joi.string().valid('SOLD', 'CHECKED_IN'),
  price_paid: creditsNumber,
  acquired_via: Joi.string().valid('PURCHASE', 'TRANSFER'),
  purchased_at: isoTime.allow(null),
});

export const qrView = Joi.object({
  qr_payload: Joi.string().description('base64(iv ‖ ciphertext ‖ tag), AES-256-GCM'),
  generated_at: isoTime,
  expires_at: isoTime,
  ttl_seconds: Joi.number().integer(),
});

export const verifyBody = Joi.object({
  qr_payload: Joi.string().max(4096).required().description('The QR code as scanned: base64 of AES-256-GCM'),
  hall_id: Joi.string().min(1).max(50).required().description('The hall this gate is at'),
}).example({ qr_payload: 'q3Jm0Q1mHc7a8j5kR0x2bL0d3Yw1T7s9vP4uQ6eZ', hall_id: 'HALL-A' });

export const verifyView = Joi.object({
  result: Joi.string().valid(...SCAN_RESULTS),
  seat_id: Joi.string().uuid(),
  row_number: Joi.string(),
  seat_number: Joi.number().integer(),
  owner_name: Joi.string().allow(null).description("The ticket holder's name, when the QR is the owner's"),
  scanned_at: isoTime,
  message: Joi.string(),
});

const otpCode = Joi.string()
  .pattern(/^\d{6}$/)
  .messages({ 'string.pattern.base': '{{#label}} is six digits' });

export const initiateBody = Joi.object({
  seat_id: uuid().required(),
  seller_user_id: uuid().required().description('the owner of the ticket'),
  buyer_user_id: uuid().required(),
  credits_amount: money({ max: 1_000_000, zero: true })
    .required()
    .description('what the buyer pays the seller, in credits (0: a gift)'),
}).example({
  seat_id: '7b0e3f7c-2d4a-4c1e-9b8a-5f6e7d8c9a0b',
  seller_user_id: '3f1c9a52-8d4e-4b7a-9c2f-6e5d4a3b2c1d',
  buyer_user_id: '5a2b7c3d-1e4f-4a6b-8c9d-0e1f2a3b4c5d',
  credits_amount: 80,
});

export const confirmBody = Joi.object({
  transfer_id: uuid().required(),
  seller_otp: otpCode.description("the seller's code; leave it out if the seller verified it already"),
  buyer_otp: otpCode.description("the buyer's code; leave it out if the buyer verified it already"),
}).example({ transfer_id: '01937a4e-0c5d-7e2f-8a1b-3c4d5e6f7a8b', seller_otp: '123456', buyer_otp: '654321' });

export const disputeBody = Joi.object({
  transfer_id: uuid().required(),
  reason: Joi.string().trim().min(1).max(500).required().description('what went wrong, for the admin who decides'),
}).example({ transfer_id: '01937a4e-0c5d-7e2f-8a1b-3c4d5e6f7a8b', reason: 'The seller sent me the wrong seat.' });

export const transferIdBody = Joi.object({ transfer_id: uuid().required() }).example({
  transfer_id: '01937a4e-0c5d-7e2f-8a1b-3c4d5e6f7a8b',
});

export const initiateView = Joi.object({
  transfer_id: Joi.string().uuid(),
  seat_id: Joi.string().uuid(),
  status: Joi.string().valid('PENDING_OTP'),
  initiated_by: Joi.string().valid('SELLER', 'BUYER'),
  credits_amount: creditsNumber,
  expires_at: isoTime.description('confirm before then, or the transfer ends FAILED'),
  message: Joi.string(),
});

export const confirmView = Joi.object({
  transfer_id: Joi.string().uuid(),
  status: Joi.string().valid('COMPLETED'),
  seat_id: Joi.string().uuid(),
  new_owner_user_id: Joi.string().uuid(),
  credits_transferred: creditsNumber,
  message: Joi.string(),
});

export const disputeView = Joi.object({
  transfer_id: Joi.string().uuid(),
  status: Joi.string().valid('DISPUTED'),
  frozen_credits: creditsNumber.description("what is frozen of the seller's credits: up to the transferred amount"),
  message: Joi.string(),
});

export const reverseView = Joi.object({
  transfer_id: Joi.string().uuid(),
  status: Joi.string().valid('REVERSED'),
  seat_id: Joi.string().uuid(),
  restored_owner_user_id: Joi.string().uuid(),
  credits_returned: creditsNumber.description('what the dispute froze, back to the buyer'),
  message: Joi.string(),
});

export const resolveView = Joi.object({
  transfer_id: Joi.string().uuid(),
  status: Joi.string().valid('COMPLETED'),
  credits_released: creditsNumber.description('what the dispute froze, spendable by the seller again'),
  message: Joi.string(),
});
