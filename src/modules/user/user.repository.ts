import { LockMode, raw } from '@mikro-orm/core';
import { EntityRepository } from '@mikro-orm/knex';
import { AppError } from '../../kernel/errors.js';
import type { User } from './user.entities.js';

/** Accounts as the admin screens and the profile read them; login sessions stay raw SQL (ADR 6). */
export class UserRepository extends EntityRepository<User> {
  async exists(email: string) {
    return (await this.count({ email: email.toLowerCase() })) > 0;
  }

  findByEmail(email: string) {
    return this.findOne({ email: email.toLowerCase() });
  }

  get(id: string) {
    return this.findOneOrFail({ id }, { failHandler: () => new AppError('USER_NOT_FOUND', 'No such user.') });
  }

  /** Oldest first; the email filter is a substring in which `%` and `_` (common in emails) stand for themselves. */
  async list(filter: { email?: string }, offset: number, limit: number) {
    const needle = filter.email?.toLowerCase().replace(/[!%_]/g, '!$&');
    const where = needle ? { [raw((alias: string) => `${alias}.email like ? escape '!'`, [`%${needle}%`])]: [] } : {};
    const [items, total] = await this.findAndCount(where, { orderBy: { createdAt: 'asc', id: 'asc' }, offset, limit });
    return { items, total };
  }

  /**
   * Every admin, their rows locked (PostgreSQL; SQLite runs one writer at a time anyway) in id
   * order, so that two transactions that both need them queue instead of deadlocking. Call inside
   * a transaction.
   */
  lockAdmins() {
    return this.find({ role: 'admin' }, { orderBy: { id: 'asc' }, lockMode: LockMode.PESSIMISTIC_WRITE });
  }
}
