/**
 * `npm run start:split`: the four slices on one machine, as production runs them. Each module
 * runs in its own process (`MODULES=<module> node --import tsx src/main.ts`, on its port:
 * USER_PORT … ORCHESTRATOR_PORT, 5000–5003 by default), with this process's environment, so
 * that they share the secrets, the database settings and each other's URLs. Every line a slice
 * writes is prefixed with its module's name. SIGINT or SIGTERM stops them all (each drains as
 * on its own); when one slice ends by itself, the others are stopped too and this exits non-zero.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { modules } from '../src/modules/index.js';

const names = modules.map((m) => m.name);
const width = Math.max(...names.map((n) => n.length));

interface Slice {
  name: string;
  child: ChildProcess;
  exited: Promise<number>;
}

/** Copies a stream to ours line by line, each line prefixed: lines of two slices never mix. */
function prefixed(stream: NodeJS.ReadableStream | null, name: string, out: NodeJS.WriteStream) {
  if (!stream) return;
  const tag = `${name.padEnd(width)} | `;
  createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
    out.write(`${tag}${line}\n`);
  });
}

function start(name: string): Slice {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, MODULES: name },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  prefixed(child.stdout, name, process.stdout);
  prefixed(child.stderr, name, process.stderr);
  const exited = new Promise<number>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGTERM' ? 0 : 1))),
  );
  return { name, child, exited };
}

const slices = names.map(start);
let stopping = false;

function stopAll(signal: NodeJS.Signals) {
  if (stopping) return;
  stopping = true;
  for (const s of slices) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill(signal);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => stopAll('SIGTERM'));

let failed = false;
await Promise.all(
  slices.map(async (s) => {
    const code = await s.exited;
    if (stopping) return;
    // A slice that ends on its own leaves the others without a module they need.
    failed = true;
    process.stderr.write(`${s.name.padEnd(width)} | exited with ${code}; stopping the other slices\n`);
    stopAll('SIGTERM');
  }),
);
const codes = await Promise.all(slices.map((s) => s.exited));
process.exit(failed || codes.some((c) => c !== 0) ? 1 : 0);
