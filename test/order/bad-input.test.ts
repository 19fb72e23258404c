import { invalid } from '../helpers/assert.js';
import { badInputSuite, type Endpoint, type Fixture } from '../helpers/bad-input.js';
import { orderRowCounts, placeOrder } from '../helpers/orders.js';
import { adminLogin, newUser } from '../helpers/users.js';

/** Every order endpoint against the shared bad-input suite (test/helpers/bad-input.ts). */

interface OrderFixture extends Fixture {
  orderId: string;
}

function endpoints(f: OrderFixture): Endpoint[] {
  return [
    {
      name: 'list orders',
      method: 'GET',
      path: '/api/orders',
      auth: 'user',
      query: { page: '1', per_page: '5' },
      wrongTypes: { page: ['abc', '0', '-1', '1.5', '1e99'], per_page: ['abc', '0', '101', '2.5'] },
      strings: { page: invalid, per_page: invalid },
    },
    { name: 'order', method: 'GET', path: '/api/orders/:order_id', params: { order_id: f.orderId }, auth: 'user' },
  ];
}

badInputSuite<OrderFixture>({
  async fixture(app) {
    const user = await newUser(app);
    const order = await placeOrder(app, { userId: user.userId });
    return { user, admin: await adminLogin(app), orderId: order.orderId };
  },
  endpoints,
  rows: orderRowCounts,
});
