/**
 * The one clock every TTL reads (holds, one-time passwords, idempotency keys, leases, tokens).
 * Production runs on the system clock; a test moves a manual one instead of waiting.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface ManualClock extends Clock {
  /** Moves the clock forward (or back, with a negative amount). */
  advance(ms: number): void;
}

/** Real time plus an offset that only the test moves, so that time still passes between steps. */
export function manualClock(): ManualClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance(ms) {
      offset += ms;
    },
  };
}
