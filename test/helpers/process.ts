import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface Server {
  child: ChildProcess;
  dataDir: string;
  output(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
  cleanup(): void;
}

export interface SpawnOptions {
  /** The script to run (default `src/main.ts`). */
  script?: string;
  /** Node options before the script, after `--import tsx` (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** An existing data directory, left in place by `cleanup()` (default: a fresh one, removed). */
  dataDir?: string;
  /** Output appended to this file instead of a pipe: a process under load does not wait on a reader. */
  logFile?: string;
  /** `npm` starts it through `npm start`, in its own process group. */
  launch?: 'node' | 'npm';
  /**
   * Its own process group, killed whole by `cleanup()`: for a script that starts processes of
   * its own (start:split), which a kill of the script alone would leave running.
   */
  group?: boolean;
}

/**
 * Starts `src/main.ts` (or `options.script`) as its own process, as `npm start` does, on a fresh
 * SQLite directory and with only the given environment (plus PATH), so that the caller's
 * DATABASE_URL cannot leak in. `launch: 'npm'` starts it through `npm start` instead, with npm
 * leading its own process group as a terminal's job does, so that a test can signal npm alone
 * or the whole group (Ctrl-C).
 */
export function spawnServer(env: Record<string, string>, options: SpawnOptions = {}): Server {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'tr-proc-'));
  const fd = options.logFile ? openSync(options.logFile, 'a') : undefined;
  const npm = options.launch === 'npm';
  const group = npm || options.group === true;
  const [command, args] = npm
    ? ['npm', ['start']]
    : [process.execPath, ['--import', 'tsx', ...(options.nodeArgs ?? []), options.script ?? 'src/main.ts']];
  const npmEnv = npm ? { HOME: process.env.HOME ?? tmpdir(), npm_config_update_notifier: 'false' } : {};
  const child = spawn(command, args, {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '', ...npmEnv, NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: dataDir, ...env },
    stdio: fd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', fd, fd],
    detached: group,
  });
  if (fd !== undefined) closeSync(fd);
  let output = '';
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const logFile = options.logFile;
  return {
    child,
    dataDir,
    output: () => (logFile ? readFileSync(logFile, 'utf8') : output),
    exited,
    cleanup() {
      if (group) signalGroup(child, 'SIGKILL');
      else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Polls GET /health until it answers 200 (or whatever `ready` accepts), the process dies, or the
 * time runs out; resolves with the last body.
 */
export async function waitForHealth(
  server: Server,
  base: string,
  timeoutMs = 30_000,
  ready: (status: number, body: unknown) => boolean = (status) => status === 200,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`server exited: ${server.output()}`);
    const res = await fetch(`${base}/health`).catch(() => undefined);
    const body = await res?.json().catch(() => undefined);
    if (res && ready(res.status, body)) return body;
    await sleep(100);
  }
  throw new Error(`no /health within ${timeoutMs} ms: ${server.output()}`);
}

/** Signals every process of the group `leader` leads; false when none is left. */
export function signalGroup(leader: ChildProcess, signal: NodeJS.Signals | 0): boolean {
  // Without a pid (spawn failed) there is no group; process.kill(-0) would signal the caller's own.
  if (!leader.pid) return false;
  try {
    process.kill(-leader.pid, signal);
    return true;
  } catch {
    return false;
  }
}
