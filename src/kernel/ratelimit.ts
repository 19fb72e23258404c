import type { Middleware } from 'koa';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import { AppError } from './errors.js';
import type { Database } from './persistence.js';

/** How long a window lasts, from a key's first hit in it. */
const WINDOW_MS = 60_000;

/**
 * Request limits per client address and route, counted in the module's own database: every
 * instance of a slice shares the module's database, so several instances count together, and a
 * restart forgets nothing. A key's window is the minute from its first hit (not a clock-aligned
 * minute, whose edge would let twice the limit through in a moment); a hit is one statement (an
 * upsert that answers the window's count), so a limit is for the sensitive routes (login, codes,
 * top-ups), not the hot path.
 */
export function createRateLimits(db: Database, clock: Clock) {
  const table = db.table('rate_limits');
  const HIT = `insert into ${table} as r (key, window_start, hits) values (:key, :now, 1)
    on conflict (key) do update set
      window_start = case when r.window_start <= :ended then excluded.window_start else r.window_start end,
      hits = case when r.window_start <= :ended then 1 else r.hits + 1 end
    returning hits, window_start`;
  return {
    /** Counts a hit; answers the window's hits so far and the seconds until the window ends. */
    async hit(key: string): Promise<{ hits: number; resetS: number }> {
      const now = clock.now();
      const [row] = await db.all<{ hits: number | string; window_start: unknown }>(HIT, {
        key,
        now: db.time(now),
        ended: db.time(now - WINDOW_MS),
      });
      const start = db.date(row.window_start).getTime();
      return { hits: Number(row.hits), resetS: Math.max(1, Math.ceil((start + WINDOW_MS - now) / 1000)) };
    },
    /** Deletes the windows that have ended; answers how many. */
    async purge(): Promise<number> {
      const ended = db.time(clock.now() - WINDOW_MS);
      return (await db.all(`delete from ${table} where window_start <= ? returning key`, [ended])).length;
    },
  };
}

export type RateLimits = ReturnType<typeof createRateLimits>;

/**
 * The limit of a route: RATE_LIMITS names routes with their own (`login=10,register=5`), the
 * others take RATE_LIMIT_PER_MINUTE.
 */
export function limitOf(config: Config, name: string): number {
  for (const entry of config.rateLimits.split(',')) {
    const [route, max] = entry.split('=').map((s) => s.trim());
    if (route === name && max) return Number(max);
  }
  return config.rateLimitPerMinute;
}

/**
 * Per-client-address limit on one sensitive route, in requests a minute: 429 RATE_LIMITED with
 * Retry-After past it. Every answer says the limit and what is left of it (RateLimit-Limit,
 * RateLimit-Remaining, RateLimit-Reset in seconds).
 */
export function rateLimit(limits: RateLimits, config: Config, name: string): Middleware {
  const max = limitOf(config, name);
  return async (ctx, next) => {
    const { hits, resetS: reset } = await limits.hit(`${name}:${ctx.ip}`);
    ctx.set('RateLimit-Limit', String(max));
    ctx.set('RateLimit-Remaining', String(Math.max(0, max - hits)));
    ctx.set('RateLimit-Reset', String(reset));
    if (hits > max) {
      ctx.set('Retry-After', String(reset));
      throw new AppError('RATE_LIMITED', 'Too many requests; slow down.');
    }
    await next();
  };
}
