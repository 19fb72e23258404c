import Joi from 'joi';
import type { TokenService } from '../../kernel/auth.js';
import type { Config } from '../../kernel/config.js';
import { AppError } from '../../kernel/errors.js';
import { type RateLimits, rateLimit } from '../../kernel/ratelimit.js';
import { createApiRouter } from '../../kernel/routing.js';
import { credits, isoDate, messageSchema } from '../../kernel/schemas.js';
import type { Accounts } from './accounts.js';
import type { User } from './user.entities.js';
import * as s from './user.schemas.js';

export const userView = (u: User) => ({
  user_id: u.id,
  email: u.email,
  phone: u.phone,
  full_name: u.fullName ?? null,
  role: u.role,
  credit_balance: credits(u.creditBalance),
  is_flagged: u.isFlagged,
  created_at: isoDate(u.createdAt),
});

/** Registration, login, tokens, the caller's profile and the admin user list. */
export function userRoutes(accounts: Accounts, tokens: TokenService, config: Config, limits: RateLimits) {
  const api = createApiRouter('user', 'Auth and users');

  api.route(
    'post',
    '/api/auth/register',
    {
      summary: 'Create a customer account',
      access: 'public',
      body: s.registerBody,
      response: Joi.object({ user_id: Joi.string().uuid(), email: Joi.string(), message: Joi.string() }),
      errors: ['EMAIL_ALREADY_EXISTS', 'RATE_LIMITED'],
      before: [rateLimit(limits, config, 'register')],
    },
    async ({ body }) => {
      const user = await accounts.create({
        email: body.email,
        phone: body.phone,
        password: body.password,
        fullName: body.full_name,
      });
      return { user_id: user.id, email: user.email, message: 'Account created; you can log in now.' };
    },
  );

  api.route(
    'post',
    '/api/auth/login',
    {
      summary: 'Log in with email and password',
      access: 'public',
      status: 200,
      body: s.loginBody,
      response: s.tokenView,
      errors: ['UNAUTHORIZED', 'RATE_LIMITED'],
      before: [rateLimit(limits, config, 'login')],
    },
    async ({ body }) => {
      const { user, ...issued } = await accounts.login(body.email, body.password);
      return {
        ...issued,
        user: { user_id: user.id, email: user.email, role: user.role, credit_balance: credits(user.creditBalance) },
      };
    },
  );

  api.route(
    'post',
    '/api/auth/refresh',
    {
      summary: 'Trade a refresh token (as the bearer) for a new token pair',
      description: 'The refresh token is rotated: using it a second time answers 401 and ends the session.',
      access: 'refresh',
      status: 200,
      response: s.tokenView,
    },
    ({ principal }) => accounts.refresh(principal.sid, principal.userId, principal.jti),
  );

  api.route(
    'post',
    '/api/auth/logout',
    {
      summary: 'End the session: the access and refresh tokens stop working',
      access: 'user',
      status: 200,
      body: s.logoutBody,
      response: messageSchema,
    },
    async ({ principal, body }) => {
      await accounts.revoke(principal.sid);
      if (body.refresh_token) {
        const other = await tokens.verify(body.refresh_token, 'refresh').catch(() => undefined);
        if (other?.userId === principal.userId) await accounts.revoke(other.sid);
      }
      return { message: 'Logged out.' };
    },
  );

  api.route(
    'get',
    '/api/users/me',
    { summary: 'The caller’s profile', access: 'user', response: s.userView },
    async ({ principal }) => userView(await accounts.get(principal.userId)),
  );

  api.route(
    'get',
    '/api/admin/users',
    {
      summary: 'List users, optionally filtered by email',
      access: ['admin'],
      query: s.adminUsersQuery,
      paginated: true,
      response: s.userView,
    },
    async ({ query, page }) => {
      const { items, total } = await accounts.list({ email: query.email }, page.offset, page.perPage);
      return { items: items.map(userView), total };
    },
  );

  api.route(
    'patch',
    '/api/admin/users/:user_id',
    {
      summary: 'Change a user’s role or risk flag',
      description:
        'There is always at least one admin: an admin cannot remove their own admin role, and the last admin ' +
        'cannot be demoted, also when two admins demote each other at the same moment (one of them wins); ' +
        'both answer 403 FORBIDDEN.',
      access: ['admin'],
      params: s.userIdParams,
      body: s.adminUserPatch,
      response: s.userView,
      errors: ['INVALID_UUID', 'USER_NOT_FOUND', 'FORBIDDEN'],
    },
    async ({ params, body, principal }) => {
      if (params.user_id === principal.userId && body.role && body.role !== 'admin') {
        throw new AppError('FORBIDDEN', 'An admin cannot remove their own admin role.');
      }
      return userView(await accounts.update(params.user_id, { role: body.role, isFlagged: body.is_flagged }));
    },
  );

  return api;
}
