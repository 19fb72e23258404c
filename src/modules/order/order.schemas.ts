import Joi from 'joi';
import { uuid } from '../../kernel/schemas.js';
import { TRANSFER_INITIATORS, TRANSFER_STATUSES } from './order.entities.js';
import { ORDER_STATUSES } from './order.port.js';

export const orderIdParams = Joi.object({ order_id: uuid().required() });

export const orderView = Joi.object({
  order_id: Joi.string().uuid(),
  seat_id: Joi.string().uuid().description('the first of seat_ids'),
  seat_ids: Joi.array().items(Joi.string().uuid()).description('in the order the reserve named them'),
  event_id: Joi.string().uuid(),
  status: Joi.string()
    .valid(...ORDER_STATUSES)
    .description('a PENDING order whose hold has ended reads as EXPIRED'),
  total: Joi.number().description('the sum of the seats’ prices, in credits'),
  credits_charged: Joi.number().description('the total once the order is paid for (CONFIRMED or REFUNDED), else 0'),
  created_at: Joi.string().isoDate(),
  confirmed_at: Joi.string().isoDate().allow(null),
  expires_at: Joi.string().isoDate().description('when the hold on the seats ends'),
});

export const transferIdParams = Joi.object({ transfer_id: uuid().required() });

export const transferView = Joi.object({
  transfer_id: Joi.string().uuid(),
  seat_id: Joi.string().uuid(),
  order_id: Joi.string().uuid().allow(null).description('the order that sold the seat'),
  seller_user_id: Joi.string().uuid(),
  buyer_user_id: Joi.string().uuid(),
  credits_amount: Joi.number().description('what the buyer pays the seller, in credits'),
  status: Joi.string()
    .valid(...TRANSFER_STATUSES)
    .description('a transfer whose codes ran out before it was confirmed reads FAILED'),
  initiated_by: Joi.string().valid(...TRANSFER_INITIATORS),
  dispute_reason: Joi.string().allow(null),
  frozen_credits: Joi.number().description("what a dispute froze of the seller's credits"),
  expires_at: Joi.string()
    .isoDate()
    .allow(null)
    .description('until when a transfer under way can be confirmed; null once confirming or ended'),
  created_at: Joi.string().isoDate(),
  updated_at: Joi.string().isoDate(),
  completed_at: Joi.string().isoDate().allow(null),
});
