import { readFileSync } from 'node:fs';

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

/**
 * Real time plus the offset written in a file (CLOCK_OFFSET_FILE, tests only): a test that runs
 * the slices as processes of their own moves their time by writing the file, before it sends the
 * request that should see the new time. The file is read on every call; a missing or unreadable
 * one adds nothing.
 */
export function fileClock(path: string): Clock {
  return {
    now() {
      let offset = 0;
      try {
        offset = Number(readFileSync(path, 'utf8')) || 0;
      } catch {}
      return Date.now() + offset;
    },
  };
}
