import { Counter } from 'prom-client';
import { defineModule } from '../../kernel/module.js';
import { orchestratorEntities } from './orchestrator.entities.js';
import { orchestratorErrors } from './orchestrator.errors.js';
import { orchestratorMigrations } from './orchestrator.migrations.js';
import { purchaseRoutes, ticketRoutes, transferRoutes, verifyRoutes } from './orchestrator.routes.js';
import { orchestratorSettings } from './orchestrator.settings.js';
import { createPurchase } from './purchase.js';
import { createSagaLog } from './saga.js';
import { createTickets } from './tickets.js';
import { createTransfers } from './transfers.js';
import { createVerification } from './verification.js';

/**
 * The public flows that cross modules: purchase (reserve, pay, OTP), tickets with their QR codes,
 * transfers between users with their disputes, and verification at the door. It owns no business table, only its saga log, and reaches the others through ports.
 */
export const orchestratorModule = defineModule({
  name: 'orchestrator',
  defaultPort: 5003,
  entities: orchestratorEntities,
  migrations: orchestratorMigrations,
  requires: ['user', 'event', 'order'],
  errors: orchestratorErrors,
  settings: orchestratorSettings,
  start({ config, db, log, ports, clock, faults, metrics, limits }) {
    // A runner's claim on a saga outlives its slowest step: three tries of a port call at its deadline.
    const leaseMs = 3 * config.internalTimeoutMs + 2000;
    const sagas = createSagaLog(db, clock, faults, log, leaseMs);
    const purchase = createPurchase(ports, sagas, db, config, clock);
    const transferEnds = new Counter({
      name: 'orchestrator_transfers_total',
      help: 'Transfer sagas by how they ended: completed, failed, disputed, resolved, reversed',
      labelNames: ['outcome'],
      registers: [metrics],
    });
    const transfers = createTransfers(ports, sagas, db, clock, leaseMs, (outcome) => transferEnds.inc({ outcome }));
    const tickets = createTickets(ports, config, clock);
    const verification = createVerification(ports, config, clock);
    const recovered = new Counter({
      name: 'orchestrator_sagas_recovered_total',
      help: 'Sagas a crashed or stalled runner left, finished by recovery',
      registers: [metrics],
    });
    return {
      routers: [
        purchaseRoutes(purchase, transfers, config, limits),
        ticketRoutes(tickets),
        transferRoutes(transfers, config, limits),
        verifyRoutes(verification),
      ],
      jobs: [
        {
          name: 'saga-recovery',
          intervalMs: config.sweepIntervalMs,
          leased: true,
          atStart: true,
          run: async () => recovered.inc(await sagas.recover()),
        },
      ],
    };
  },
});
