import { randomUUID } from 'node:crypto';
import argon2 from 'argon2';
import type { Role, TokenService } from '../../kernel/auth.js';
import type { Clock } from '../../kernel/clock.js';
import type { Config } from '../../kernel/config.js';
import { AppError } from '../../kernel/errors.js';
import type { Database } from '../../kernel/persistence.js';
import { isoDate } from '../../kernel/schemas.js';
import { User } from './user.entities.js';
import type { UserDto } from './user.port.js';
import type { UserRepository } from './user.repository.js';

interface UserRow {
  id: string;
  email: string;
  phone: string;
  full_name: string | null;
  role: Role;
  is_flagged: boolean | number;
  credit_balance: number | string;
  frozen_credits: number | string;
  created_at: unknown;
}

const isUniqueViolation = (err: unknown) =>
  err instanceof Error &&
  (err.name === 'UniqueConstraintViolationException' || /UNIQUE|unique constraint/i.test(err.message));

/** Accounts, password checks and login sessions. */
/** How long a live session's check is remembered (see sessionActive). */
export const SESSION_VIEW_MS = 1000;
/** How far back a session view's question reaches before its last answer (see sessionChanges). */
const SESSION_CHANGES_OVERLAP_MS = 5000;
const MAX_SESSION_VIEWS = 100_000;

export function createAccounts(db: Database, config: Config, tokens: TokenService, clock: Clock) {
  const liveSessions = new Map<string, { userId: string; role: Role; until: number }>();
  const hashOptions = { type: argon2.argon2id as 2, ...config.passwordHash };
  // Spent on unknown emails too, so that a login's timing does not tell whether the email exists.
  const decoy = argon2.hash(randomUUID(), hashOptions);
  const sessions = db.table('sessions');
  const usersTable = db.table('users');
  /** The repository of the request's entity manager, or of a transaction's. */
  const users = (em = db.em) => em.getRepository<User, UserRepository>(User);

  async function issue(user: { id: string; role: string }, sid: string, refreshJti: string) {
    const access = await tokens.sign({ userId: user.id, role: user.role as Role, sid, type: 'access' });
    const refresh = await tokens.sign({
      userId: user.id,
      role: user.role as Role,
      sid,
      type: 'refresh',
      jti: refreshJti,
    });
    return {
      access_token: access.token,
      refresh_token: refresh.token,
      token_type: 'Bearer' as const,
      expires_in: access.expiresIn,
    };
  }

  const accounts = {
    async create(input: { email: string; phone: string; password: string; fullName?: string | null; role?: Role }) {
      const taken = () => new AppError('EMAIL_ALREADY_EXISTS', 'An account with this email already exists.');
      // Spares the password hash for a taken email; the unique key still decides a race.
      if (await users().exists(input.email)) throw taken();
      const em = db.em.fork();
      const now = new Date(clock.now());
      const user = em.create(User, {
        id: randomUUID(),
        email: input.email.toLowerCase(),
        phone: input.phone,
        passwordHash: await argon2.hash(input.password, hashOptions),
        fullName: input.fullName ?? null,
        role: input.role ?? 'customer',
        isFlagged: false,
        creditBalance: 0,
        frozenCredits: 0,
        createdAt: now,
        updatedAt: now,
      });
      try {
        await em.flush();
      } catch (err) {
        if (isUniqueViolation(err)) throw taken();
        throw err;
      }
      return user;
    },

    get: (userId: string) => users().get(userId),

    findByEmail: (email: string) => users().findByEmail(email),

    async login(email: string, password: string) {
      const user = await accounts.findByEmail(email);
      let ok = false;
      if (user) ok = await argon2.verify(user.passwordHash, password);
      else await argon2.verify(await decoy, password);
      if (!user || !ok) throw new AppError('UNAUTHORIZED', 'The email or password is wrong.');
      const sid = randomUUID();
      const refreshJti = randomUUID();
      const now = new Date(clock.now());
      await db.all(
        `insert into ${sessions} (id, user_id, refresh_jti, revoked_at, expires_at, created_at)
         values (:sid, :userId, :refreshJti, null, :expiresAt, :now)`,
        {
          sid,
          userId: user.id,
          refreshJti,
          expiresAt: db.time(now.getTime() + config.refreshTokenTtlSeconds * 1000),
          now: db.time(now),
        },
      );
      return { ...(await issue(user, sid, refreshJti)), user };
    },

    /** Rotates the refresh token; a rotated-out token used again ends the whole session (theft). */
    async refresh(sid: string, userId: string, jti: string) {
      const next = randomUUID();
      const now = db.time(new Date(clock.now()));
      const [row] = await db.all<{ user_id: string }>(
        `update ${sessions} set refresh_jti = :next where id = :sid and user_id = :userId and refresh_jti = :jti
         and revoked_at is null and expires_at > :now returning user_id`,
        { next, sid, userId, jti, now },
      );
      if (!row) {
        await accounts.revoke(sid);
        throw new AppError('UNAUTHORIZED', 'This refresh token is no longer valid; log in again.');
      }
      const user = await accounts.get(userId);
      const { access_token, refresh_token, expires_in } = await issue(user, sid, next);
      return { access_token, refresh_token, expires_in };
    },

    async revoke(sid: string) {
      liveSessions.delete(sid);
      await db.all(`update ${sessions} set revoked_at = ? where id = ? and revoked_at is null`, [
        db.time(new Date(clock.now())),
        sid,
      ]);
    },

    /** The risk flag alone, on every pay: one indexed read, not an entity load. */
    /**
     * The user as other modules read it (the port's getUser): one prepared statement, not the
     * ORM. The door reads the ticket holder on every scan; through the ORM (a fork, a find and
     * an entity) that read took about a fifth of the CPU of a scan.
     */
    async profile(userId: string): Promise<UserDto> {
      const [row] = await db.all<UserRow>(
        `select id, email, phone, full_name, role, is_flagged, credit_balance, frozen_credits, created_at
         from ${usersTable} where id = ?`,
        [userId],
      );
      if (!row) throw new AppError('USER_NOT_FOUND', 'No such user.');
      return {
        userId: row.id,
        email: row.email,
        phone: row.phone,
        fullName: row.full_name ?? null,
        role: row.role,
        isFlagged: !!row.is_flagged,
        creditBalance: Number(row.credit_balance),
        frozenCredits: Number(row.frozen_credits),
        createdAt: isoDate(db.date(row.created_at)),
      };
    },

    async riskFlag(userId: string): Promise<boolean> {
      const [row] = await db.all<{ is_flagged: boolean | number }>(
        `select is_flagged from ${usersTable} where id = ?`,
        [userId],
      );
      if (!row) throw new AppError('USER_NOT_FOUND', 'No such user.');
      return !!row.is_flagged;
    },

    /**
     * Whether a session is live and its user's role now. A live answer is remembered for
     * SESSION_VIEW_MS, so that a request does not cost a query; this process forgets it at once
     * on a logout or a role change, and another instance of the module within that time.
     */
    async sessionActive(sid: string, userId: string): Promise<{ active: boolean; role?: Role }> {
      const seen = liveSessions.get(sid);
      if (seen && seen.userId === userId && performance.now() < seen.until) return { active: true, role: seen.role };
      const [row] = await db.all<{ role: Role }>(
        `select u.role from ${sessions} s join ${usersTable} u on u.id = s.user_id where s.id = ? and s.user_id = ? and s.revoked_at is null`,
        [sid, userId],
      );
      if (!row) return { active: false };
      if (liveSessions.size >= MAX_SESSION_VIEWS) liveSessions.clear();
      liveSessions.set(sid, { userId, role: row.role, until: performance.now() + SESSION_VIEW_MS });
      return { active: true, role: row.role };
    },

    /**
     * What changed since `since` for other slices' session views: the sessions revoked and the
     * users whose role changed, with their role now, and the time to ask from next. The window
     * reaches SESSION_CHANGES_OVERLAP_MS further back than `since`, so that a change committed
     * just after an earlier answer was read (its time before that answer's) is still seen. With
     * no `since`, the window is the last `windowMs`: what a token issued before a change can still
     * meet, as an access token lives no longer than that.
     */
    async sessionChanges(since: string | null, windowMs: number) {
      const now = clock.now();
      const from = db.time(since === null ? now - windowMs : Date.parse(since) - SESSION_CHANGES_OVERLAP_MS);
      const [revoked, roles] = await Promise.all([
        db.all<{ id: string }>(`select id from ${sessions} where revoked_at > ?`, [from]),
        db.all<{ id: string; role: Role }>(`select id, role from ${usersTable} where role_changed_at > ?`, [from]),
      ]);
      return {
        at: isoDate(now),
        revoked: revoked.map((r) => r.id),
        roles: roles.map((r) => ({ userId: r.id, role: r.role })),
      };
    },

    list: (filter: { email?: string }, offset: number, limit: number) => users().list(filter, offset, limit),

    /**
     * A demotion locks every admin first and counts them under the lock, so that two admins
     * demoting each other at the same moment cannot both succeed and leave none.
     */
    async update(userId: string, patch: { role?: Role; isFlagged?: boolean }) {
      const updated = await db.em.transactional(async (em) => {
        const repo = users(em);
        const admins = patch.role && patch.role !== 'admin' ? await repo.lockAdmins() : [];
        const user = await repo.get(userId);
        if (user.role === 'admin' && patch.role && patch.role !== 'admin' && admins.length < 2) {
          throw new AppError('FORBIDDEN', 'The last admin cannot be demoted.');
        }
        if (patch.role !== undefined && patch.role !== user.role) {
          user.role = patch.role;
          user.roleChangedAt = new Date(clock.now());
        }
        if (patch.isFlagged !== undefined) user.isFlagged = patch.isFlagged;
        user.updatedAt = new Date(clock.now());
        return user;
      });
      // After the commit, so that no request remembers the old role again.
      for (const [sid, seen] of liveSessions) if (seen.userId === userId) liveSessions.delete(sid);
      return updated;
    },

    /** Creates the account if its email is free; used for ADMIN_EMAIL and demo users. */
    async ensure(input: { email: string; phone: string; password: string; fullName?: string; role: Role }) {
      return (await accounts.findByEmail(input.email)) ?? accounts.create(input);
    },
  };
  return accounts;
}

export type Accounts = ReturnType<typeof createAccounts>;
