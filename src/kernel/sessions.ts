import type { Role, SessionCheck } from './auth.js';
import type { Logger } from './logger.js';

/** What the owner of sessions answers a view: what changed since its last question. */
export interface SessionChanges {
  /** Where to ask from next. */
  at: string;
  revoked: string[];
  roles: { userId: string; role: Role }[];
}

export interface SessionViewOptions {
  /** Asks the owner of sessions (the user slice) what changed since `since`. */
  changes: (since: string | null) => Promise<SessionChanges>;
  /** The per-request check, for when the view is not fresh. */
  fallback: SessionCheck;
  log: Logger;
  /** How often the view asks. */
  refreshMs?: number;
  /** A view older than this is not trusted: requests are checked one by one until it is fresh again. */
  staleMs?: number;
  /** How long a revocation or a role change is kept: longer than any access token lives. */
  keepMs: number;
}

/**
 * A slice's view of sessions, for the slices that do not load the module that owns them: every
 * `refreshMs` it asks that module what was revoked and whose role changed, and answers each
 * request's session check from memory, with no call. A logout therefore takes effect on every
 * slice within about `refreshMs` (at most `staleMs`). Tokens are signed by us, so a token's
 * session exists; what a view must know is which were revoked since the token was issued, and
 * that set is small: revocations and role changes of the last access-token lifetime. While the
 * view cannot refresh (the user slice is down or slow), it falls back to asking per request, which
 * answers 503 as before, rather than trust what may be stale.
 */
export function createSessionView(options: SessionViewOptions) {
  const refreshMs = options.refreshMs ?? 250;
  const staleMs = options.staleMs ?? 1000;
  const revoked = new Map<string, number>();
  const roles = new Map<string, { role: Role; until: number }>();
  let since: string | null = null;
  /** When the question behind the last answer was asked (performance.now()); -Infinity: never. */
  let asked = Number.NEGATIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let failures = 0;

  async function refresh() {
    const started = performance.now();
    try {
      const changes = await options.changes(since);
      const until = started + options.keepMs;
      for (const sid of changes.revoked) revoked.set(sid, until);
      for (const r of changes.roles) roles.set(r.userId, { role: r.role, until });
      since = changes.at;
      asked = started;
      if (failures) options.log.info({ after: failures }, 'session view is fresh again');
      failures = 0;
    } catch (err) {
      if (failures++ === 0) options.log.warn({ err }, 'session view cannot refresh; checking sessions per request');
    }
    for (const [sid, until] of revoked) if (until <= started) revoked.delete(sid);
    for (const [userId, r] of roles) if (r.until <= started) roles.delete(userId);
  }

  const tick = () => {
    running ??= refresh().finally(() => {
      running = undefined;
    });
    return running;
  };

  const check: SessionCheck = async (sid, userId, opts) => {
    if (opts?.fresh || performance.now() - asked > staleMs) return options.fallback(sid, userId);
    if (revoked.has(sid)) return { active: false };
    const changed = roles.get(userId);
    return changed ? { active: true, role: changed.role } : { active: true };
  };

  return {
    check,
    /** Asks now (and at start); resolves once the answer is in. */
    refresh: tick,
    /** Whether requests are answered from the view now. */
    fresh: () => performance.now() - asked <= staleMs,
    start() {
      void tick();
      timer = setInterval(() => void tick(), refreshMs);
      timer.unref();
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}

export type SessionView = ReturnType<typeof createSessionView>;
