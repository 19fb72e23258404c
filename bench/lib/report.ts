import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { Row } from './load.js';
import {
  CPU_PROF,
  DURATION,
  GET_CONNECTIONS,
  HOLD_CONNECTIONS,
  HOLD_SEATS,
  HOLD_TTL_SECONDS,
  type Kind,
  RESULTS_DIR,
  ROOT,
  WARMUP,
} from './settings.js';
import type { Setup } from './setup.js';

export interface DbResult {
  kind: Kind;
  database: string;
  setup: Omit<Setup, 'holdSeatIds'> & { holdSeats: number };
  rows: Row[];
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

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
    r.ratioToBaseline === undefined ? '—' : `${Math.round(r.ratioToBaseline * 100)} %`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i <= 1 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i <= 1 ? `-${'-'.repeat(w)}-` : `-${'-'.repeat(w)}:`)).join('|')}|`;
  return [line(head), rule, ...body.map(line)].join('\n');
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
    durationS: DURATION,
    warmupS: WARMUP,
    holdSeats: HOLD_SEATS,
    getConnections: GET_CONNECTIONS,
    holdConnections: HOLD_CONNECTIONS,
    holdTtlSeconds: HOLD_TTL_SECONDS,
    cpuProfile: CPU_PROF,
    server: 'node --import tsx src/main.ts, NODE_ENV=development, SEED_DEMO=false, MODULES=event',
  };
  const json = { date: new Date().toISOString(), machine: machine(), settings, ...result };
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  // biome.json covers bench/**: formatted its way, a result left here keeps `npm run lint` clean.
  spawnSync(join(ROOT, 'node_modules', '.bin', 'biome'), ['format', '--write', file], { stdio: 'ignore' });
  return file.slice(ROOT.length + 1);
}

/** The table and the notes under it, on stdout. */
export function report(result: DbResult, file: string) {
  const m = machine();
  const target = result.rows.find((r) => r.target === 'server' && r.logLevel === 'warn' && r.ratioToBaseline);
  const lines = [
    '',
    `${result.kind === 'sqlite' ? 'SQLite' : 'PostgreSQL'}: ${result.database}`,
    `${new Date().toISOString()} · ${m.cpus} cores (${m.cpuModel}) · Node ${m.node} · ${DURATION} s per run after ${WARMUP} s warm-up`,
    'real server: node --import tsx src/main.ts, MODULES=event, NODE_ENV=development; autocannon runs in this process, on the same cores',
    '',
    table(result),
    '',
  ];
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
    `holds: ${result.setup.holdSeats.toLocaleString('en-US')}-seat pool; seats HELD after each run: ${holds
      .map((r) => `${fmt(r.heldAfter ?? 0)} (${who(r)})`)
      .join(', ')}${holds.some((r) => r.poolWrapped) ? '; the pool ran out in a run, later requests were 409s' : ''}`,
  );
  lines.push(
    `setup: events created in ${result.setup.createMs.map((c) => `${fmt(c.ms)} ms (${fmt(c.seats)} seats)`).join(', ')}; seat map of 5,000 seats is ${fmt(result.setup.mapBytes / 1024)} KiB`,
  );
  lines.push(`results: ${file}`);
  console.log(lines.join('\n'));
}
