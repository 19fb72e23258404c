import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
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

/**
 * Starts `src/main.ts` as its own process on a fresh SQLite directory and with only the given
 * environment (plus PATH), so that the caller's DATABASE_URL cannot leak in. `npm` starts it
 * through `npm start` instead, with npm leading its own process group as a terminal's job does,
 * so that a test can signal npm alone or the whole group (Ctrl-C).
 */
export function spawnServer(env: Record<string, string>, launch: 'node' | 'npm' = 'node'): Server {
  const dataDir = mkdtempSync(join(tmpdir(), 'tr-proc-'));
  const [command, args] =
    launch === 'npm' ? ['npm', ['start']] : [process.execPath, ['--import', 'tsx', 'src/main.ts']];
  const npmEnv = launch === 'npm' ? { HOME: process.env.HOME ?? tmpdir(), npm_config_update_notifier: 'false' } : {};
  const child = spawn(command, args, {
    cwd: process.cwd(),
    env: { PATH: process.env.PATH ?? '', ...npmEnv, NODE_ENV: 'test', LOG_LEVEL: 'silent', DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: launch === 'npm',
  });
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
  return {
    child,
    dataDir,
    output: () => output,
    exited,
    cleanup() {
      if (launch === 'npm') signalGroup(child, 'SIGKILL');
      else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Polls GET /health until it answers 200, the process dies, or the time runs out. */
export async function waitForHealth(server: Server, base: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.child.exitCode !== null) throw new Error(`server exited: ${server.output()}`);
    const res = await fetch(`${base}/health`).catch(() => undefined);
    if (res?.status === 200) return res.json();
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
