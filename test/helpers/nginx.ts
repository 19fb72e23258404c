import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import { freePort } from './process.js';
import type { Slice } from './split.js';

/**
 * The shipped reverse proxy, deploy/nginx.conf, run by Debian's nginx for a test: its upstreams
 * point at the test's slices (one port each, or several instances of a slice), it listens on a
 * free port, and it keeps its files in a temporary directory.
 */

/** Debian's nginx, if this machine has it (.ci/run installs nginx-light). */
export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));

/** The port each upstream of deploy/nginx.conf lists, as shipped. */
const SHIPPED: Record<Slice, number> = { user: 5000, order: 5001, event: 5002, orchestrator: 5003 };

/** Where each slice runs: its port, or the ports of its instances (all listed in its upstream). */
export type Upstreams = Record<Slice, number | readonly number[]>;

/** deploy/nginx.conf with these upstreams, listening on `edgePort`, its files in `dir`. */
export function nginxConfig(upstreams: Upstreams, edgePort: number, dir: string): string {
  let conf = readFileSync('deploy/nginx.conf', 'utf8')
    .replace('listen 8080;', `listen 127.0.0.1:${edgePort};`)
    .replace('root /srv/ticketremaster;', `root ${dir};`)
    .replace('http {', `http {\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;`);
  for (const [slice, port] of Object.entries(SHIPPED) as [Slice, number][]) {
    const shipped = `server 127.0.0.1:${port};`;
    // A config whose upstreams changed shape would leave the shipped ports in place: say so.
    if (!conf.includes(shipped)) throw new Error(`deploy/nginx.conf no longer has "${shipped}" (${slice})`);
    const ports = [upstreams[slice]].flat();
    conf = conf.replace(shipped, ports.map((p) => `server 127.0.0.1:${p};`).join(' '));
  }
  return conf;
}

export interface Nginx {
  /** The one base URL of every route. */
  edge: string;
  /** Its temporary directory (config, temp files, the merged document when written). */
  dir: string;
  /** What nginx wrote to stderr (warnings, upstream errors). */
  output(): string;
}

/**
 * Starts nginx in the foreground on deploy/nginx.conf pointed at `upstreams`, stopped and cleaned
 * up when the test ends; resolves once it answers. `openapi` first writes the merged document
 * (`npm run openapi`) where the edge serves /openapi.json from.
 */
export async function startNginx(
  t: ExecutionContext,
  upstreams: Upstreams,
  options: { openapi?: boolean } = {},
): Promise<Nginx> {
  if (!NGINX) throw new Error('nginx is missing (apt-get install nginx-light)');
  const dir = mkdtempSync(join(tmpdir(), 'tr-nginx-'));
  // nginx's workers run as another user (nobody): they read the document from here.
  chmodSync(dir, 0o755);
  const edgePort = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(upstreams, edgePort, dir));
  if (options.openapi) {
    // The merged document, as a deployment writes it with `npm run openapi`.
    const doc = spawn(process.execPath, ['--import', 'tsx', 'scripts/openapi.ts', join(dir, 'openapi.json')]);
    await new Promise((resolve) => doc.once('exit', resolve));
  }
  const nginx = spawn(NGINX, ['-p', dir, '-e', 'stderr', '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  nginx.stderr.on('data', (d) => {
    output += d;
  });
  const exited = new Promise((resolve) => nginx.once('exit', resolve));
  t.teardown(async () => {
    // TERM is nginx's fast shutdown: the master stops its workers too (a KILL would orphan them).
    nginx.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    nginx.kill('SIGKILL');
    nginx.stderr.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  const edge = `http://127.0.0.1:${edgePort}`;
  for (let i = 0; i < 100; i++) {
    if (await fetch(`${edge}/nope`).catch(() => undefined)) return { edge, dir, output: () => output };
    if (nginx.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`nginx did not start: ${output}`);
}
