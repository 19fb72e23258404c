import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createSigner, createVerifier } from 'fast-jwt';
import type { Context, Middleware } from 'koa';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import { AppError } from './errors.js';
import { isUuid } from './schemas.js';

export type Role = 'customer' | 'staff' | 'admin';
export type TokenType = 'access' | 'refresh';

export interface Principal {
  userId: string;
  role: Role;
  sid: string;
  jti: string;
  type: TokenType;
  exp: number;
}

/**
 * Says whether a login session is still live and what role its user has now, so that a logout
 * or a role change takes effect at once. Supplied by whoever owns sessions (the user module).
 */
export type SessionCheck = (
  sid: string,
  userId: string,
  /** `fresh`: ask the owner of sessions itself, not a slice's view of it (sessions.ts). */
  options?: { fresh?: boolean },
) => Promise<{ active: boolean; role?: Role }>;

/** Who may call a route: anyone, any signed-in user, some roles, or the bearer of a refresh token. */
export type Access = 'public' | 'user' | 'refresh' | Role[];

export interface TokenService {
  sign(claims: {
    userId: string;
    role: Role;
    sid: string;
    type: TokenType;
    jti?: string;
  }): Promise<{ token: string; jti: string; expiresIn: number }>;
  verify(token: string, type: TokenType): Promise<Principal>;
}

/**
 * HS256 JWTs (fast-jwt: synchronous HMAC; WebCrypto's asynchronous jobs cost more than the check
 * itself). Only HS256 is accepted, so `alg: none` and every other algorithm are refused. Times
 * come from the injectable clock: `iat` and `exp` are set here, and `exp` is checked here.
 */
/** How many verified tokens a process remembers (least recently used first out). */
const VERIFIED_TOKENS = 5000;

export function createTokenService(config: Config, clock: Clock): TokenService {
  const key = Buffer.from(config.jwtSecret, 'utf8');
  const signer = createSigner({ key, algorithm: 'HS256' });
  const verifier = createVerifier({ key, algorithms: ['HS256'], ignoreExpiration: true, cache: false });
  // Tokens whose signature verified, by their text (fast-jwt's own cache keys them by a hash, which
  // costs as much as the HMAC): a client sends one token many times. Only the signature and the
  // claims are remembered; expiry and the session are checked on every request.
  const verified = new Map<string, Record<string, unknown>>();
  const payloadOf = (token: string) => {
    let payload = verified.get(token);
    if (!payload) {
      payload = verifier(token) as Record<string, unknown>;
      if (verified.size >= VERIFIED_TOKENS) verified.delete(verified.keys().next().value as string);
      verified.set(token, payload);
    }
    return payload;
  };
  const ttl = { access: config.accessTokenTtlSeconds, refresh: config.refreshTokenTtlSeconds };
  return {
    async sign({ userId, role, sid, type, jti = randomUUID() }) {
      const iat = Math.floor(clock.now() / 1000);
      const token = signer({ role, type, sid, sub: userId, jti, iat, exp: iat + ttl[type] });
      return { token, jti, expiresIn: ttl[type] };
    },
    async verify(token, type) {
      let payload: Record<string, unknown>;
      try {
        payload = payloadOf(token);
      } catch {
        throw new AppError('UNAUTHORIZED', 'The token is invalid.');
      }
      const { sub, role, sid, jti, exp } = payload;
      // Ids are UUIDs: anything else could not name a session and must never reach a query.
      const wellFormed = isUuid(sub) && isUuid(sid) && isUuid(jti) && typeof exp === 'number';
      if (!wellFormed || payload.type !== type || !['customer', 'staff', 'admin'].includes(role as string)) {
        throw new AppError('UNAUTHORIZED', `An ${type} token is required.`);
      }
      if (exp <= Math.floor(clock.now() / 1000)) throw new AppError('TOKEN_EXPIRED', 'The token has expired.');
      return { userId: sub, role: role as Role, sid, jti, type, exp };
    },
  };
}

function bearer(ctx: Context): string | undefined {
  const header = ctx.get('authorization');
  if (!header) return undefined;
  // The scheme is case-insensitive (RFC 7235).
  const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(header);
  if (!match) throw new AppError('UNAUTHORIZED', 'The Authorization header must be "Bearer <token>".');
  return match[1];
}

declare module 'koa' {
  interface DefaultState {
    /**
     * Verifies the bearer token on first use; routes call it through their access guard.
     * `fresh` checks the session again, with its owner rather than a view of it.
     */
    authenticate: (type?: TokenType, options?: { fresh?: boolean }) => Promise<Principal>;
    principal?: Principal;
    bearerToken?: string;
  }
}

/** Auth context: token verification is lazy, so public routes never pay for it. */
export function authContext(tokens: TokenService, sessions: () => SessionCheck | undefined): Middleware {
  return async (ctx, next) => {
    ctx.state.authenticate = async (type: TokenType = 'access', options?: { fresh?: boolean }) => {
      if (ctx.state.principal && !options?.fresh) return ctx.state.principal;
      const token = bearer(ctx);
      if (!token) throw new AppError('UNAUTHORIZED', 'A bearer token is required.');
      const principal = await tokens.verify(token, type);
      const check = sessions();
      if (check) {
        const session = await check(principal.sid, principal.userId, options);
        if (!session.active) throw new AppError('UNAUTHORIZED', 'The session has ended; log in again.');
        if (session.role) principal.role = session.role;
      }
      ctx.state.principal = principal;
      ctx.state.bearerToken = token;
      return principal;
    };
    await next();
  };
}

/** The guard for one route's access rule. */
export function guard(access: Access): Middleware | undefined {
  if (access === 'public') return undefined;
  return async (ctx, next) => {
    const type = access === 'refresh' ? 'refresh' : 'access';
    let principal = await ctx.state.authenticate(type);
    if (Array.isArray(access) && !access.includes(principal.role)) {
      // A slice's view of sessions may not have seen a promotion yet: before refusing, the role
      // is read from the owner of sessions, so that a refusal is never stale.
      principal = await ctx.state.authenticate(type, { fresh: true });
      if (!access.includes(principal.role)) throw new AppError('FORBIDDEN', 'Your role may not do this.');
    }
    await next();
  };
}

export const SERVICE_TOKEN_HEADER = 'x-service-token';

/**
 * Everything under /internal is for our own slices: without the service credential every method
 * and path there is 401, known or not, so that the internal routes cannot be discovered.
 */
export function internalGuard(serviceToken: string): Middleware {
  const expected = Buffer.from(serviceToken);
  return async (ctx, next) => {
    // Routes match case-insensitively, so the prefix must too: /INTERNAL/… reaches the same routes.
    const path = ctx.path.toLowerCase();
    if (path !== '/internal' && !path.startsWith('/internal/')) return next();
    const given = Buffer.from(ctx.get(SERVICE_TOKEN_HEADER));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new AppError('UNAUTHORIZED', 'The service credential is missing or wrong.');
    }
    await next();
  };
}
