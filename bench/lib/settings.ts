import { existsSync } from 'node:fs';
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

/**
 * What runs: the hold path of the event slice (`hold`), the purchase through the whole app
 * (`purchase`), verification at the door, alone and during a flash sale (`verify`).
 */
export const PARTS = (process.env.BENCH_PARTS || 'hold,purchase,verify').toLowerCase().split(',');
if (PARTS.length === 0 || !PARTS.every((p) => p === 'hold' || p === 'purchase' || p === 'verify')) {
  console.error(
    `BENCH_PARTS must be a comma-separated list of hold, purchase, verify (got "${process.env.BENCH_PARTS}")`,
  );
  process.exit(2);
}
/**
 * The shapes of the real server that the purchase part measures: the whole app in one process
 * (`single`) and the four slices in four processes (`split`), one after the other in the same run.
 */
export type Shape = 'single' | 'split';
const shapesAsked = (process.env.BENCH_SHAPES || 'single,split').toLowerCase().split(',');
if (!shapesAsked.every((p) => p === 'single' || p === 'split')) {
  console.error(`BENCH_SHAPES must be a comma-separated list of single, split (got "${process.env.BENCH_SHAPES}")`);
  process.exit(2);
}
/** In this order whatever the list's: the single process first, the split shape against it. */
export const SHAPES = (['single', 'split'] as const).filter((s) => shapesAsked.includes(s)) as Shape[];
/**
 * The nginx in front of the split shape's slices, with deploy/nginx.conf: BENCH_NGINX (a path), or
 * Debian's where it is installed; empty (none installed, or BENCH_NGINX=none) routes each request
 * straight to the slice that owns it.
 */
export const NGINX = ((): string => {
  const given = process.env.BENCH_NGINX;
  if (given === 'none' || given === '0') return '';
  if (given) {
    if (!existsSync(given)) {
      console.error(`BENCH_NGINX: no nginx at "${given}" (BENCH_NGINX=none routes to the slices directly)`);
      process.exit(2);
    }
    return resolve(given);
  }
  return ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p)) ?? '';
})();
/** Seats of each flash sale (the figure: 10,000). */
export const SALE_SEATS = intEnv('BENCH_SALE_SEATS', 10_000, 100);
/** `0`: the flash sale of 1 seat per order only, without the 1–4 seat variant. */
export const SALE_MULTI = process.env.BENCH_SALE_MULTI !== '0';
/**
 * Seats (and, at 10 seats a user, a tenth as many buyers) for POST /api/reserve at 50
 * connections on the real server, warm-up included; every request a seat never drawn before.
 */
export const RESERVE_SEATS = intEnv('BENCH_RESERVE_SEATS', 2_000 * (DURATION + WARMUP), 100);
/** The same for the baseline's POST /reserve, which is faster and needs no users of its own. */
export const BASELINE_RESERVE_SEATS = 8_000 * (DURATION + WARMUP);
export const SALE_BUYERS = 100;
export const SALE_CONNECTIONS = 50;
export const RESERVE_CONNECTIONS = 50;
/** Credits granted to every buyer: far more than a buyer can spend in a sale. */
export const SALE_BALANCE = 1_000_000;
/** MAX_HELD_SEATS_PER_USER's default: a reserve user makes at most this many reserves. */
export const HOLDS_PER_USER = 10;

/**
 * Tickets (SOLD seats, each with its owner's QR payload) that the verify runs scan, the first
 * scan of each a SUCCESS: enough for one run at the rate measured here (about 1,000 scans a second
 * at most here), so that every scan of a run is a first scan. Between runs the pool goes back from
 * CHECKED_IN to SOLD; past it, scans wrap around and are DUPLICATEs. Their QR payloads are fetched
 * one by one at setup, which takes a few seconds per thousand.
 */
export const VERIFY_TICKETS = intEnv('BENCH_VERIFY_TICKETS', 3_000 * DURATION, 100);
export const VERIFY_CONNECTIONS = 20;
/**
 * The verify part's warm-ups (of verify, and of the sale) last BENCH_WARMUP seconds and at least
 * this many answers, at most 5 × BENCH_WARMUP seconds: at the rates of the whole app, 2 s were not
 * enough (verify went from about 850 to 1,150 req/s between its first and its fifth thousand).
 */
export const VERIFY_WARMUP_ANSWERS = 5_000;
/** The targets for POST /api/verify at 20 connections: reported, never asserted. */
export const VERIFY_TARGET_P99_MS = { alone: 20, sale: 50 };
/** QR_TTL_SECONDS of the verify runs' server (its maximum): the payloads fetched at setup stay valid. */
export const VERIFY_QR_TTL_SECONDS = 3600;
/** Tickets bought per order at the verify setup (its server's MAX_SEATS_PER_ORDER and hold limit). */
export const VERIFY_SEATS_PER_ORDER = 100;
/** Tickets per owner of the verify pool. */
export const VERIFY_TICKETS_PER_OWNER = 1_000;

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
