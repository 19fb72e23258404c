import { decodeJwt, SignJWT, UnsecuredJWT } from 'jose';
import type { TestApp } from './app.js';

export type Claims = Record<string, unknown>;

/** The claims of a token the server issued. */
export const claimsOf = (token: string): Claims => decodeJwt(token) as Claims;

/**
 * Signs arbitrary claims as the server would (HS256 with its JWT secret) unless told otherwise,
 * so that a test can make tokens the server never issues: expired, other algorithms, odd claims.
 */
export function sign(
  app: TestApp,
  claims: Claims,
  options: { alg?: 'HS256' | 'HS384' | 'HS512'; secret?: string } = {},
): Promise<string> {
  const key = new TextEncoder().encode(options.secret ?? app.kernel.config.jwtSecret);
  return new SignJWT(claims).setProtectedHeader({ alg: options.alg ?? 'HS256', typ: 'JWT' }).sign(key);
}

/** The same claims with `alg: none` and no signature. */
export const unsigned = (claims: Claims): string => new UnsecuredJWT(claims).encode();

/** A copy of an issued token's claims that expired a minute ago. */
export function expired(token: string): Claims {
  const now = Math.floor(Date.now() / 1000);
  return { ...claimsOf(token), iat: now - 1000, exp: now - 60 };
}
