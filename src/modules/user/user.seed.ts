import type { Config } from '../../kernel/config.js';
import type { Logger } from '../../kernel/logger.js';
import type { Database } from '../../kernel/persistence.js';
import type { Accounts } from './accounts.js';
import type { Ledger } from './ledger.js';
import { User } from './user.entities.js';

export const DEMO_USERS = [
  {
    email: 'admin@ticketremaster.local',
    password: 'admin-pass-123',
    role: 'admin',
    fullName: 'Demo Admin',
    phone: '+6590000001',
    credits: 0,
    flagged: false,
  },
  {
    email: 'staff@ticketremaster.local',
    password: 'staff-pass-123',
    role: 'staff',
    fullName: 'Door Staff',
    phone: '+6590000002',
    credits: 0,
    flagged: false,
  },
  {
    email: 'alice@ticketremaster.local',
    password: 'alice-pass-123',
    role: 'customer',
    fullName: 'Alice Tan',
    phone: '+6590000003',
    credits: 200_000,
    flagged: false,
  },
  {
    email: 'bob@ticketremaster.local',
    password: 'bob-pass-1234',
    role: 'customer',
    fullName: 'Bob Lim (flagged)',
    phone: '+6590000004',
    credits: 100_000,
    flagged: true,
  },
] as const;

type DemoUser = (typeof DEMO_USERS)[number];

/**
 * The first admin from ADMIN_EMAIL/ADMIN_PASSWORD, and demo users on an empty development
 * database. Returns the demo users this call created: only their passwords are known to work.
 */
export async function seedUsers({
  config,
  db,
  log,
  accounts,
  ledger,
}: {
  config: Config;
  db: Database;
  log: Logger;
  accounts: Accounts;
  ledger: Ledger;
}): Promise<DemoUser[]> {
  if (config.adminEmail && config.adminPassword) {
    const existing = await accounts.findByEmail(config.adminEmail);
    if (!existing) {
      await accounts.create({
        email: config.adminEmail,
        password: config.adminPassword,
        phone: '+6500000000',
        fullName: 'Administrator',
        role: 'admin',
      });
      log.info({ email: config.adminEmail }, 'created the first admin from ADMIN_EMAIL');
    }
  }
  if (!config.seedDemo || config.env === 'production') return [];
  if ((await db.em.fork().count(User, {})) > (config.adminEmail ? 1 : 0)) return [];
  for (const demo of DEMO_USERS) {
    const user = await accounts.ensure({ ...demo });
    if (demo.flagged) await accounts.update(user.id, { isFlagged: true });
    if (demo.credits)
      await ledger.credit({
        userId: user.id,
        amount: demo.credits,
        key: `demo-grant:${user.email}`,
        type: 'GRANT',
        referenceId: 'demo data',
      });
  }
  log.info({ users: DEMO_USERS.map((u) => u.email) }, 'seeded demo users');
  // A demo address given as ADMIN_EMAIL is the admin made above, with ADMIN_PASSWORD.
  return DEMO_USERS.filter((u) => u.email !== config.adminEmail.toLowerCase());
}

/** The start banner's block for the demo users a start created; nothing on a database that had users. */
export const demoAccountLines = (created: DemoUser[]): string[] =>
  created.length === 0
    ? []
    : [
        'Demo accounts (email / password / role):',
        ...created.map((u) => `  ${u.email} / ${u.password} / ${u.role}${u.flagged ? ' (flagged)' : ''}`),
      ];
