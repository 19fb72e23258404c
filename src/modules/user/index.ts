import { createTokenService } from '../../kernel/auth.js';
import { defineModule } from '../../kernel/module.js';
import { createAccounts } from './accounts.js';
import { creditRoutes } from './credits.routes.js';
import { createLedger } from './ledger.js';
import { createOtp } from './otp.js';
import { createPayments, createProvider } from './payments.js';
import { paymentRoutes } from './payments.routes.js';
import { userEntities } from './user.entities.js';
import { userErrors } from './user.errors.js';
import { userMigrations } from './user.migrations.js';
import { type UserPort, userPortDefinition } from './user.port.js';
import { userRoutes } from './user.routes.js';
import { demoAccountLines, seedUsers } from './user.seed.js';
import { userSettings } from './user.settings.js';

export type {
  FreezeResult,
  LedgerResult,
  MoveResult,
  OtpPurpose,
  OtpSent,
  SessionChanges,
  UserDto,
  UserPort,
} from './user.port.js';
export { userPortDefinition } from './user.port.js';

declare module '../../kernel/registry.js' {
  interface PortTypes {
    user: UserPort;
  }
}

/** Accounts, tokens, the credits ledger, one-time passwords and top-ups. */
export const userModule = defineModule({
  name: 'user',
  defaultPort: 5000,
  entities: userEntities,
  migrations: userMigrations,
  port: userPortDefinition,
  errors: userErrors,
  settings: userSettings,
  async start({ config, db, log, clock, idempotency, outbox, limits }) {
    const tokens = createTokenService(config, clock);
    const accounts = createAccounts(db, config, tokens, clock);
    const ledger = createLedger(db, idempotency);
    const otp = createOtp(db, config, log, idempotency, outbox, clock);
    const payments = createPayments(db, createProvider(config, log), ledger, log);

    const port: UserPort = {
      getUser: ({ userId }) => accounts.profile(userId),
      getRiskFlag: async ({ userId }) => ({ userId, isFlagged: await accounts.riskFlag(userId) }),
      isSessionActive: ({ sid, userId }) => accounts.sessionActive(sid, userId),
      // An access token lives accessTokenTtlSeconds: older changes cannot concern one.
      sessionChanges: ({ since }) => accounts.sessionChanges(since, (config.accessTokenTtlSeconds + 60) * 1000),
      debit: (a) => ledger.debit(a),
      refund: (a) => ledger.credit({ ...a, type: 'REFUND' }),
      moveCredits: (a) => ledger.move(a),
      freezeCredits: (a) => ledger.freeze(a),
      releaseCredits: (a) => ledger.release(a),
      sendOtp: (a) => otp.send(a),
      verifyOtp: (a) => otp.verify(a),
    };

    return {
      routers: [
        userRoutes(accounts, tokens, config, limits),
        creditRoutes(db, accounts, ledger),
        paymentRoutes(config, payments, limits),
      ],
      port,
      afterStart: async () => demoAccountLines(await seedUsers({ config, db, log, accounts, ledger })),
    };
  },
});
