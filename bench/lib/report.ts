import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { Row } from './load.js';
import type { PurchaseResult, PurchaseRow } from './purchase.js';
import {
  CPU_PROF,
  DURATION,
  GET_CONNECTIONS,
  HOLD_CONNECTIONS,
  HOLD_SEATS,
  HOLD_TTL_SECONDS,
  type Kind,
  NGINX,
  PARTS,
  RESERVE_CONNECTIONS,
  RESERVE_SEATS,
  RESULTS_DIR,
  ROOT,
  SALE_BUYERS,
  SALE_CONNECTIONS,
  SALE_SEATS,
  SHAPES,
  VERIFY_CONNECTIONS,
  VERIFY_QR_TTL_SECONDS,
  VERIFY_TARGET_P99_MS,
  VERIFY_TICKETS,
  WARMUP,
} from './settings.js';
import type { Setup } from './setup.js';
import type { VerifyResult, VerifyRow } from './verify.js';

export interface DbResult {
  kind: Kind;
  database: string;
  /** The hold part (absent with BENCH_PARTS=purchase). */
  setup?: Omit<Setup, 'holdSeatIds'> & { holdSeats: number };
  rows: Row[];
  /** The purchase part (absent without `purchase` in BENCH_PARTS). */
  purchase?: PurchaseResult;
  /** The verify part (absent without `verify` in BENCH_PARTS). */
  verify?: VerifyResult;
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** A Markdown table: the first `left` columns left-aligned, the rest right-aligned. */
function markdown(head: string[], body: string[][], left: number): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < left ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`;
  return [line(head), rule, ...body.map(line)].join('\n');
}

const ratio = (r: { ratioToBaseline?: number }) =>
  r.ratioToBaseline === undefined ? '—' : `${Math.round(r.ratioToBaseline * 100)} %`;

function table(result: DbResult): string {
  const head = [
    'scenario',
    'log level',
    'conns',
    's',
    'req/s',
    'p50 ms',
    'p99 ms',
    'MB/s',
    '2xx',
    '409',
    'errors',
    'vs baseline',
  ];
  const body = result.rows.map((r) => [
    r.scenario,
    r.logLevel ?? '—',
    String(r.connections),
    fmt(r.durationS, 1),
    fmt(r.reqPerSec),
    String(r.p50Ms),
    String(r.p99Ms),
    fmt(r.mbPerSec, 1),
    fmt(r.ok2xx),
    r.heldAfter === undefined ? '—' : fmt(r.conflict409),
    fmt(r.errors),
    ratio(r),
  ]);
  return markdown(head, body, 2);
}

const targetName = (r: PurchaseRow) =>
  r.target === 'server'
    ? 'real server, 1 process'
    : r.target === 'split'
      ? `real server, split (4 processes${r.routing === 'nginx' ? ' + nginx' : ', direct to the slice'})`
      : 'raw-SQL baseline';

/** Groups of a row's CPU figures that are not the server's own processes. */
const NOT_SERVER = new Set(['postgres', 'load generator']);

/**
 * CPU ms a seat (held by the reserve run, sold by a sale) of the server's processes (the app, or
 * the slices and nginx) and of the bench database's PostgreSQL backends: it moves less than seats/s
 * between runs on a shared machine.
 */
function cpuPerSeat(r: PurchaseRow): { server: number; postgres?: number } | undefined {
  if (!r.cpuPct || r.seatsPerSec <= 0) return undefined;
  const server = Object.entries(r.cpuPct)
    .filter(([k]) => !NOT_SERVER.has(k))
    .reduce((n, [, v]) => n + v, 0);
  const ms = (pct: number) => (10 * pct) / r.seatsPerSec;
  return { server: ms(server), postgres: r.cpuPct.postgres === undefined ? undefined : ms(r.cpuPct.postgres) };
}

/** The issue's targets for the split shape against the single process: reported, never asserted. */
export const SPLIT_TARGETS = { throughput: 0.5, p99: 2 };

/** Each split row against the single process's row of the same scenario, with the targets. */
function splitTable(rows: PurchaseRow[]): string {
  const head = [
    'scenario',
    'single seats/s',
    'split seats/s',
    `split/single seats/s (≥ ${SPLIT_TARGETS.throughput * 100} %)`,
    'single p50/p99 ms',
    'split p50/p99 ms',
    `split/single p99 (≤ ${SPLIT_TARGETS.p99}×)`,
    'server CPU ms a seat, single → split',
  ];
  const body = rows.flatMap((r) => {
    const single = rows.find((s) => s.target === 'server' && s.scenario === r.scenario);
    if (r.target !== 'split' || !single || !r.vsSingle) return [];
    const { throughput, p99 } = r.vsSingle;
    return [
      [
        r.scenario,
        fmt(single.seatsPerSec),
        fmt(r.seatsPerSec),
        `${Math.round(throughput * 100)} %: ${throughput >= SPLIT_TARGETS.throughput ? 'met' : 'NOT met'}`,
        `${fmt(single.p50Ms, 1)} / ${fmt(single.p99Ms, 1)}`,
        `${fmt(r.p50Ms, 1)} / ${fmt(r.p99Ms, 1)}`,
        `${fmt(p99, 2)}×: ${p99 <= SPLIT_TARGETS.p99 ? 'met' : 'NOT met'}`,
        `${fmt(cpuPerSeat(single)?.server ?? 0, 2)} → ${fmt(cpuPerSeat(r)?.server ?? 0, 2)}`,
      ],
    ];
  });
  return body.length ? markdown(head, body, 1) : '';
}

function purchaseTable(rows: PurchaseRow[]): string {
  const head = [
    'scenario',
    'target',
    'conns',
    's',
    'req/s',
    'seats/s',
    'p50 ms',
    'p99 ms',
    '2xx',
    '4xx',
    '5xx',
    'oversells',
    'vs baseline',
  ];
  const body = rows.map((r) => [
    r.scenario,
    targetName(r),
    r.buyers ? `${r.connections} (${r.buyers} buyers)` : String(r.connections),
    fmt(r.durationS, 1),
    fmt(r.reqPerSec),
    fmt(r.seatsPerSec),
    fmt(r.p50Ms),
    fmt(r.p99Ms),
    fmt(r.ok2xx),
    fmt(r.c4xx),
    fmt(r.c5xx + r.errors),
    r.oversells === undefined ? '—' : fmt(r.oversells),
    ratio(r),
  ]);
  return markdown(head, body, 2);
}

function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
  };
}

/** The result as JSON in bench/results/; returns the file's path from the project root. */
export function save(result: DbResult): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${new Date().toISOString().replace(/[:.]/g, '-')}-${result.kind}.json`);
  const settings = {
    parts: PARTS,
    durationS: DURATION,
    warmupS: WARMUP,
    holdSeats: HOLD_SEATS,
    getConnections: GET_CONNECTIONS,
    holdConnections: HOLD_CONNECTIONS,
    holdTtlSeconds: HOLD_TTL_SECONDS,
    reserveSeats: RESERVE_SEATS,
    reserveConnections: RESERVE_CONNECTIONS,
    saleSeats: SALE_SEATS,
    saleBuyers: SALE_BUYERS,
    saleConnections: SALE_CONNECTIONS,
    verifyTickets: VERIFY_TICKETS,
    verifyConnections: VERIFY_CONNECTIONS,
    verifyTargetP99Ms: VERIFY_TARGET_P99_MS,
    verifyQrTtlSeconds: VERIFY_QR_TTL_SECONDS,
    cpuProfile: CPU_PROF,
    shapes: SHAPES,
    nginx: NGINX || null,
    server:
      'node --import tsx src/main.ts, NODE_ENV=development, SEED_DEMO=false, MODULES=event (holds) or all (purchase, verify); split: MODULES=<module> per process (purchase)',
  };
  const json = { date: new Date().toISOString(), machine: machine(), settings, ...result };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  // biome.json covers bench/**: formatted its way, a result left here keeps `npm run lint` clean.
  spawnSync(join(ROOT, 'node_modules', '.bin', 'biome'), ['format', '--write', file], { stdio: 'ignore' });
  return file.slice(ROOT.length + 1);
}

function holdNotes(result: DbResult, setup: NonNullable<DbResult['setup']>): string[] {
  const lines = ['', table(result), ''];
  const target = result.rows.find((r) => r.target === 'server' && r.logLevel === 'warn' && r.ratioToBaseline);
  if (target?.ratioToBaseline !== undefined) {
    const pct = Math.round(target.ratioToBaseline * 100);
    lines.push(
      `hold path (LOG_LEVEL=warn) at ${pct} % of the bare Koa baseline: target ≥ 50 % ${pct >= 50 ? 'met' : 'NOT met'}`,
    );
  }
  const holds = result.rows.filter((r) => r.heldAfter !== undefined);
  const who = (r: Row) => `${r.target}${r.logLevel ? ` ${r.logLevel}` : ''}`;
  for (const r of holds) {
    const series = (r.raw.perSecond ?? []).slice(0, Math.round(r.durationS));
    lines.push(`responses per second, ${who(r)}: ${series.join(' ')}`);
  }
  lines.push(
    `holds: ${setup.holdSeats.toLocaleString('en-US')}-seat pool; seats HELD after each run: ${holds
      .map((r) => `${fmt(r.heldAfter ?? 0)} (${who(r)})`)
      .join(', ')}${holds.some((r) => r.poolWrapped) ? '; the pool ran out in a run, later requests were 409s' : ''}`,
  );
  lines.push(
    `setup: events created in ${setup.createMs.map((c) => `${fmt(c.ms)} ms (${fmt(c.seats)} seats)`).join(', ')}; seat map of 5,000 seats is ${fmt(setup.mapBytes / 1024)} KiB`,
  );
  return lines;
}

function purchaseNotes(purchase: PurchaseResult): string[] {
  const { rows } = purchase;
  const split = rows.find((r) => r.target === 'split');
  const shapes = [
    rows.some((r) => r.target === 'server') ? 'the whole app in one process (MODULES=all)' : '',
    split
      ? `the four slices in four processes (MODULES=<module> each, one schema or file each${split.routing === 'nginx' ? ', behind nginx with deploy/nginx.conf' : '; no nginx: each request sent straight to the slice that owns it'})`
      : '',
  ].filter(Boolean);
  const lines = [
    '',
    `purchase: ${shapes.join(' and ')}, LOG_LEVEL=warn, against bench/sale-baseline.ts (raw SQL, no auth)`,
    '',
    purchaseTable(rows),
    '',
  ];
  const vs = splitTable(rows);
  if (vs) {
    lines.push(
      `split against the single process (the issue's targets: seats/s ≥ ${SPLIT_TARGETS.throughput * 100} %, p99 ≤ ${SPLIT_TARGETS.p99}×; reported, not asserted):`,
      '',
      vs,
      '',
    );
  }
  for (const r of rows.filter((x) => x.cpuPct)) {
    const cpu = Object.entries(r.cpuPct ?? {})
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    const perSeat = cpuPerSeat(r);
    const ms = perSeat
      ? `; ${fmt(perSeat.server, 2)} ms of server CPU a seat${perSeat.postgres === undefined ? '' : `, ${fmt(perSeat.postgres, 2)} ms of PostgreSQL's`}`
      : '';
    lines.push(`${r.scenario}, ${targetName(r)}: CPU in % of a core: ${cpu}${ms}`);
  }
  for (const r of rows.filter((x) => x.target !== 'baseline' && x.ratioToBaseline !== undefined)) {
    lines.push(`${r.scenario}: the ${targetName(r)} at ${ratio(r)} of the baseline's seats/s`);
  }
  for (const r of rows) {
    const who = `${r.scenario}, ${r.target}`;
    if (r.heldAfter !== undefined) {
      lines.push(
        `${who}: seats HELD afterwards ${fmt(r.heldAfter)} (warm-up included)${r.poolWrapped ? '; the pool or the users ran out, later requests were refused' : ''}`,
      );
    }
    if (r.sale) {
      const { check, latency } = r.sale;
      lines.push(
        `${who}: ${fmt(r.sale.seatsSold)} seats paid (${fmt(check.soldInDb)} SOLD in the database, ${fmt(check.heldInDb)} HELD, ${fmt(r.sale.neverHeld)} never held), ${fmt(r.sale.reservesOk)} orders, ${fmt(r.sale.paysFailed)} failed pays; reserve p50/p99 ${latency.reserve.p50Ms}/${latency.reserve.p99Ms} ms, pay ${latency.pay.p50Ms}/${latency.pay.p99Ms} ms${r.sale.stopped ? `; STOPPED: ${r.sale.stopped}` : ''}`,
      );
    }
  }
  lines.push(
    `purchase setup: ${fmt(purchase.setup.users)} users registered and logged in in ${fmt(purchase.setup.usersMs / 1000, 1)} s; latencies of the sales run from the socket to the end of the answer`,
  );
  return lines;
}

/** The verdicts in the order of the rules, then anything else (a status other than 200, an unreadable answer). */
const VERDICTS = ['SUCCESS', 'DUPLICATE', 'UNPAID', 'NOT_FOUND', 'WRONG_HALL', 'EXPIRED', 'NOT_OWNER'];

function verdictMix(v: Record<string, number>): string {
  const total = Object.values(v).reduce((a, b) => a + b, 0);
  const keys = [...VERDICTS.filter((k) => v[k]), ...Object.keys(v).filter((k) => !VERDICTS.includes(k))];
  if (total === 0) return 'no answer';
  return keys.map((k) => `${k} ${fmt(v[k])} (${fmt((100 * v[k]) / total, 1)} %)`).join(', ');
}

function verifyTable(rows: VerifyRow[]): string {
  const head = [
    'scenario',
    'conns',
    's',
    'req/s',
    'p50 ms',
    'p99 ms',
    'max ms',
    'p99 target',
    '200',
    'SUCCESS',
    'DUPLICATE',
    'other verdicts',
    'non-200',
    'errors',
  ];
  const body = rows.map((r) => {
    const other = Object.entries(r.verdicts)
      .filter(([k]) => k !== 'SUCCESS' && k !== 'DUPLICATE' && !k.startsWith('HTTP '))
      .reduce((n, [, c]) => n + c, 0);
    return [
      r.scenario,
      String(r.connections),
      fmt(r.durationS, 1),
      fmt(r.reqPerSec),
      fmt(r.p50Ms, 1),
      fmt(r.p99Ms, 1),
      fmt(r.maxMs, 1),
      `< ${r.targetP99Ms} ms: ${r.p99Ms < r.targetP99Ms ? 'met' : 'NOT met'}`,
      fmt(r.ok200),
      fmt(r.verdicts.SUCCESS ?? 0),
      fmt(r.verdicts.DUPLICATE ?? 0),
      fmt(other),
      fmt(r.non200),
      fmt(r.errors),
    ];
  });
  return markdown(head, body, 1);
}

function verifyNotes(verify: VerifyResult, purchase: PurchaseResult | undefined): string[] {
  const lines = [
    '',
    `verify: POST /api/verify with a staff token at ${VERIFY_CONNECTIONS} connections against the whole app in one process (MODULES=all, LOG_LEVEL=warn, QR_TTL_SECONDS=${VERIFY_QR_TTL_SECONDS}); targets p99 < ${VERIFY_TARGET_P99_MS.alone} ms alone, < ${VERIFY_TARGET_P99_MS.sale} ms during the sale`,
    '',
    verifyTable(verify.rows),
    '',
    purchaseTable(verify.sales),
    '',
  ];
  for (const r of verify.rows) {
    lines.push(
      `${r.scenario}: verdicts ${verdictMix(r.verdicts)}; ${fmt(r.checkedInAfter)} pool seats CHECKED_IN afterwards${r.poolWrapped ? '; the pool ran out, later scans were second scans' : ''}`,
    );
    lines.push(
      `${r.scenario}: responses per second ${r.perSecond.join(' ')}; CPU ${r.serverCpuPct === undefined ? '?' : r.serverCpuPct} % of a core in the server, ${r.loadGeneratorCpuPct} % in the load generator (this process)`,
    );
  }
  const [alone, during] = verify.sales;
  if (alone && during && alone.seatsPerSec > 0) {
    lines.push(
      `the sale with verify alongside sold ${fmt(during.seatsPerSec)} seats/s, ${Math.round((100 * during.seatsPerSec) / alone.seatsPerSec)} % of the ${fmt(alone.seatsPerSec)} seats/s of the same sale alone for as long; its p50/p99 ${during.p50Ms}/${during.p99Ms} ms against ${alone.p50Ms}/${alone.p99Ms} ms`,
    );
  }
  const full = purchase?.rows.find((r) => r.target === 'server' && r.scenario === 'flash sale, 1 seat an order');
  if (full) {
    lines.push(
      `(the purchase part's whole one-seat sale, sold out to the last seat: ${fmt(full.seatsPerSec)} seats/s, p50/p99 ${full.p50Ms}/${full.p99Ms} ms)`,
    );
  }
  for (const r of verify.sales) {
    if (!r.sale) continue;
    const { check } = r.sale;
    lines.push(
      `${r.scenario}: ${fmt(r.sale.seatsSold)} seats paid (${fmt(check.soldInDb)} SOLD in the database, ${fmt(check.heldInDb)} HELD), ${r.sale.aborted ? `ended after ${fmt(r.durationS, 1)} s with ${fmt(r.sale.neverHeld)} seats left` : 'sold out'}${r.sale.stopped ? `; STOPPED: ${r.sale.stopped}` : ''}`,
    );
  }
  const { setup } = verify;
  lines.push(
    `verify setup: ${fmt(setup.tickets)} tickets bought by ${fmt(setup.owners)} owners in ${fmt(setup.buyMs / 1000, 1)} s, their QR payloads fetched in ${fmt(setup.qrMs / 1000, 1)} s; users registered in ${fmt(setup.usersMs / 1000, 1)} s; the pool goes back to unscanned (SOLD) before each verify run`,
  );
  return lines;
}

/** The tables and the notes under them, on stdout. */
export function report(result: DbResult, file: string) {
  const m = machine();
  const lines = [
    '',
    `${result.kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}: ${result.database}`,
    `${new Date().toISOString()} · ${m.cpus} cores (${m.cpuModel}) · Node ${m.node} · ${DURATION} s per run after ${WARMUP} s warm-up`,
    'real server: node --import tsx src/main.ts, NODE_ENV=development; the load generator runs in this process, on the same cores',
  ];
  if (result.setup) lines.push(...holdNotes(result, result.setup));
  if (result.purchase) lines.push(...purchaseNotes(result.purchase));
  if (result.verify) lines.push(...verifyNotes(result.verify, result.purchase));
  lines.push(`results: ${file}`);
  console.log(lines.join('\n'));
}
