import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The knobs of `npm run bench` (documented in bench/run.ts) and the constants every step shares. */

function intEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    console.error(`${name} must be an integer ≥ ${min} (got "${raw}")`);
    process.exit(2);
  }
  return n;
}

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RESULTS_DIR = join(ROOT, 'bench', 'results');
export const PROFILE_DIR = join(ROOT, '.tmp', 'bench-profiles');

export const DURATION = intEnv('BENCH_DURATION', 10, 1);
export const WARMUP = intEnv('BENCH_WARMUP', 2, 0);
/** Enough free seats that no run (≈15,000 holds/s at most here) runs out: a drawn seat is never drawn again. */
export const HOLD_SEATS = intEnv('BENCH_HOLD_SEATS', 20_000 * DURATION, 1000);
export const CPU_PROF = process.env.BENCH_CPU_PROF === '1';
export const WHICH = (process.env.BENCH_DB || 'both').toLowerCase();
if (!['sqlite', 'postgres', 'both'].includes(WHICH)) {
  console.error(`BENCH_DB must be sqlite, postgres or both (got "${process.env.BENCH_DB}")`);
  process.exit(2);
}

export const MAX_EVENT_SEATS = 50_000;
export const GET_CONNECTIONS = 10;
export const HOLD_CONNECTIONS = 50;
export const HOLD_TTL_SECONDS = 300;
export const SERVICE_TOKEN = 'bench-service-token-0123456789abcdef';
export const JWT_SECRET = 'bench-jwt-secret-0123456789abcdefghijkl';
export const ADMIN = { email: 'bench-admin@bench.local', password: 'bench-admin-pass-1' };

export type Kind = 'sqlite' | 'postgres';
export const log = (kind: Kind | 'bench', msg: string) => console.error(`[${kind}] ${msg}`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
