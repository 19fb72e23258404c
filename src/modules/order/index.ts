import { Counter } from 'prom-client';
import { defineModule } from '../../kernel/module.js';
import { orderEntities } from './order.entities.js';
import { orderErrors } from './order.errors.js';
import { orderMigrations } from './order.migrations.js';
import { type OrderPort, orderPortDefinition } from './order.port.js';
import { orderRoutes, transferRoutes } from './order.routes.js';
import { createOrders } from './orders.js';
import { createTransfers } from './transfers.js';

export type { TransferStatus } from './order.entities.js';
export type { OrderDto, OrderPort, OrderStatus, TransferDto } from './order.port.js';
export { liveStatus, ORDER_STATUSES, orderPortDefinition } from './order.port.js';

declare module '../../kernel/registry.js' {
  interface PortTypes {
    order: OrderPort;
  }
}

/** Orders and their seats, and transfers: what was bought, by whom, what it charged, and who resold it. */
export const orderModule = defineModule({
  name: 'order',
  defaultPort: 5001,
  entities: orderEntities,
  migrations: orderMigrations,
  port: orderPortDefinition,
  errors: orderErrors,
  start({ config, db, metrics, clock }) {
    const orders = createOrders(db, clock);
    const transfers = createTransfers(db, clock);
    const expired = new Counter({
      name: 'order_orders_expired_total',
      help: 'Pending orders the sweeper ended as EXPIRED',
      registers: [metrics],
    });
    const confirmed = new Counter({
      name: 'order_orders_confirmed_total',
      help: 'Orders confirmed (repeats not counted)',
      registers: [metrics],
    });

    const port: OrderPort = {
      createOrder: (args) => orders.create(args),
      getOrder: ({ orderId }) => orders.get(orderId),
      getOrders: (args) => orders.getMany(args),
      async confirmOrder(args) {
        const { confirmed: now, order } = await orders.confirm(args);
        if (now) confirmed.inc();
        return order;
      },
      endOrder: (args) => orders.end(args),
      createTransfer: (args) => transfers.create(args),
      getTransfer: ({ transferId }) => transfers.get(transferId),
      updateTransfer: (args) => transfers.update(args),
    };

    return {
      routers: [orderRoutes(db, clock), transferRoutes(transfers)],
      port,
      jobs: [
        {
          name: 'order-sweeper',
          intervalMs: config.sweepIntervalMs,
          run: async () => expired.inc(await orders.sweep()),
        },
        {
          name: 'transfer-sweeper',
          intervalMs: config.sweepIntervalMs,
          run: async () => void (await transfers.sweep()),
        },
      ],
    };
  },
});
