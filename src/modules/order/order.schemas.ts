import Joi from 'joi';
import { uuid } from '../../kernel/schemas.js';
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
