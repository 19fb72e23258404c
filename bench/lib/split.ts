import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { freePort, type Server } from '../../test/helpers/process.js';
import type { BenchDb } from './databases.js';
import { type Child, cpuSeconds, live, startSlice, stopChild } from './processes.js';
import { CPU_PROF, NGINX, ROOT, sleep } from './settings.js';

/** The four slices, in the order `npm run start:split` starts them. */
export const SLICES = ['user', 'order', 'event', 'orchestrator'] as const;
type Slice = (typeof SLICES)[number];

/** How the clients of the split shape reach the slices. */
export type Routing = 'nginx' | 'direct';

export interface Split {
  slices: Record<Slice, Child>;
  /** nginx in front of the slices, when it runs. */
  nginx?: Child;
  routing: Routing;
  /**
   * The one base URL of `paths` for a client: nginx's, or (direct) the slice that owns them all by
   * deploy/nginx.conf's routes; refused when they belong to different slices.
   */
  baseFor(...paths: string[]): string;
  /** The processes to meter, by name: each slice, and nginx's master and workers. */
  pids(): Record<string, number[]>;
  stop(): Promise<void>;
}

const CONF = join(ROOT, 'deploy', 'nginx.conf');
const SHIPPED_PORTS: Record<Slice, number> = { user: 5000, order: 5001, event: 5002, orchestrator: 5003 };

/** The routes of deploy/nginx.conf: each `location` that passes to a slice, in the file's order. */
function routes(): { match: (path: string) => boolean; regex: boolean; prefix: string; slice: Slice }[] {
  const conf = readFileSync(CONF, 'utf8');
  const out = [];
  for (const m of conf.matchAll(/location\s+(?:(~)\s+(\S+)|(\/\S*))\s*\{\s*proxy_pass\s+http:\/\/(\w+)_slice;/g)) {
    const [, tilde, pattern, prefix, slice] = m;
    if (!SLICES.includes(slice as Slice)) continue;
    if (tilde) {
      const re = new RegExp(pattern);
      out.push({ match: (p: string) => re.test(p), regex: true, prefix: '', slice: slice as Slice });
    } else {
      out.push({ match: (p: string) => p.startsWith(prefix), regex: false, prefix, slice: slice as Slice });
    }
  }
  return out;
}

/** The slice nginx would send a path to: the longest matching prefix location, unless a regex location matches. */
export function ownerOf(path: string): Slice | undefined {
  const all = routes();
  const regex = all.find((r) => r.regex && r.match(path));
  if (regex) return regex.slice;
  return all.filter((r) => !r.regex && r.match(path)).sort((a, b) => b.prefix.length - a.prefix.length)[0]?.slice;
}

/**
 * The temp paths this nginx was built with (`nginx -V`): each moved into `dir`, since Debian's
 * /var/lib/nginx is there only when the package is installed (not for a binary unpacked elsewhere).
 */
function tempPaths(bin: string, dir: string): string {
  const built = spawnSync(bin, ['-V'], { encoding: 'utf8' }).stderr ?? '';
  const directive: Record<string, string> = {
    'client-body': 'client_body_temp_path',
    proxy: 'proxy_temp_path',
    fastcgi: 'fastcgi_temp_path',
    uwsgi: 'uwsgi_temp_path',
    scgi: 'scgi_temp_path',
  };
  return [...built.matchAll(/--http-([a-z-]+)-temp-path=/g)]
    .map(([, kind]) => directive[kind])
    .filter(Boolean)
    .map((d) => `\n  ${d} ${dir}/${d.replace('_temp_path', '')};`)
    .join('');
}

/** deploy/nginx.conf with the edge's and the slices' ports and a directory of its own, as test/nginx.test.ts rewrites it. */
function nginxConfig(bin: string, ports: Record<Slice, number>, edgePort: number, dir: string): string {
  let conf = readFileSync(CONF, 'utf8')
    .replace('listen 8080;', `listen 127.0.0.1:${edgePort};`)
    .replace('root /srv/ticketremaster;', `root ${dir};`)
    .replace('http {', `http {${tempPaths(bin, dir)}`);
  for (const slice of SLICES) {
    const shipped = `server 127.0.0.1:${SHIPPED_PORTS[slice]};`;
    if (!conf.includes(shipped))
      throw new Error(`deploy/nginx.conf has no "${shipped}" to point at the ${slice} slice`);
    conf = conf.replace(shipped, `server 127.0.0.1:${ports[slice]};`);
  }
  return conf;
}

/** Debian's nginx with deploy/nginx.conf in front of the slices; its output in `<db.dir>/<kind>-split-nginx.log`. */
async function startNginx(db: BenchDb, bin: string, ports: Record<Slice, number>): Promise<Child> {
  const dir = mkdtempSync(join(os.tmpdir(), 'tr-bench-nginx-'));
  // nginx's workers run as another user (nobody): they reach their temp paths under here.
  chmodSync(dir, 0o755);
  const edgePort = await freePort();
  writeFileSync(join(dir, 'nginx.conf'), nginxConfig(bin, ports, edgePort, dir));
  const logFile = join(db.dir, `${db.kind}-split-nginx.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(bin, ['-p', dir, '-e', 'stderr', '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const server: Server = {
    child,
    dataDir: dir,
    output: () => readFileSync(logFile, 'utf8'),
    exited,
    // TERM is nginx's fast shutdown: its master stops the workers (a KILL would orphan them).
    cleanup() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
  const nginx: Child = { name: `${db.kind}-split-nginx`, base: `http://127.0.0.1:${edgePort}`, server };
  live.add(nginx);
  void exited.then(() => {
    live.delete(nginx);
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 100; i++) {
    // Anything nginx answers (its own 404 for this path) means it listens.
    if (await fetch(`${nginx.base}/nope`).catch(() => undefined)) return nginx;
    if (child.exitCode !== null) break;
    await sleep(100);
  }
  await stopChild(nginx);
  throw new Error(`nginx did not start: ${server.output().trim().split('\n').slice(-10).join('\n')}`);
}

/** The pids whose parent is `pid` (nginx's workers), from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {}
  }
  return out;
}

/**
 * The split shape: the four slices as four processes (`MODULES=<module>`, LOG_LEVEL=warn), each on
 * its port with every slice's URL, the same secrets and the same database settings (on
 * PostgreSQL one DATABASE_URL, each slice its own schema; on SQLite its own file in DATA_DIR),
 * as the Procfile and `npm run start:split` run them; then nginx in front of them with
 * deploy/nginx.conf when there is an nginx (BENCH_NGINX), the slices with TRUST_PROXY=true as
 * behind that edge. Ready once the orchestrator slice's /health is 200 (every slice it calls is live).
 */
export async function startSplit(db: BenchDb): Promise<Split> {
  const ports = Object.fromEntries(
    await Promise.all(SLICES.map(async (m) => [m, await freePort()] as const)),
  ) as Record<Slice, number>;
  const routing: Routing = NGINX ? 'nginx' : 'direct';
  const env: Record<string, string> = { TRUST_PROXY: routing === 'nginx' ? 'true' : 'false' };
  for (const m of SLICES) {
    env[`${m.toUpperCase()}_PORT`] = String(ports[m]);
    env[`${m.toUpperCase()}_URL`] = `http://127.0.0.1:${ports[m]}`;
  }
  const started = await Promise.allSettled(SLICES.map((m) => startSlice(db, m, ports[m], env, CPU_PROF)));
  const children = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const stopAll = () => Promise.allSettled(children.map(stopChild)).then(() => undefined);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await stopAll();
    throw (failed as PromiseRejectedResult).reason;
  }
  const slices = Object.fromEntries(SLICES.map((m, i) => [m, children[i]])) as Record<Slice, Child>;
  let nginx: Child | undefined;
  try {
    const orchestrator = slices.orchestrator.base;
    for (let i = 0; ; i++) {
      const res = await fetch(`${orchestrator}/health`).catch(() => undefined);
      if (res?.status === 200) break;
      if (i >= 300) throw new Error(`the orchestrator slice's /health is not 200 after 30 s (${res?.status})`);
      await sleep(100);
    }
    if (NGINX) nginx = await startNginx(db, NGINX, ports);
  } catch (err) {
    await stopAll();
    throw err;
  }
  return {
    slices,
    nginx,
    routing,
    baseFor(...paths) {
      if (nginx) return nginx.base;
      const owners = new Set(paths.map(ownerOf));
      const [owner] = owners;
      if (owners.size !== 1 || !owner) {
        throw new Error(
          `${paths.join(', ')}: not all owned by one slice (${[...owners].join(', ')}); direct routing needs one`,
        );
      }
      return slices[owner].base;
    },
    pids() {
      const out: Record<string, number[]> = {};
      for (const m of SLICES) if (slices[m].server.child.pid) out[m] = [slices[m].server.child.pid as number];
      const master = nginx?.server.child.pid;
      if (master) out.nginx = [master, ...childrenOf(master)];
      return out;
    },
    async stop() {
      if (nginx) await stopChild(nginx);
      await stopAll();
    },
  };
}

/** The PostgreSQL backends serving `database` (their process title names it), from /proc. */
function backendsOf(database: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (title.startsWith('postgres: ') && title.includes(` ${database} `)) out.push(Number(entry));
    } catch {}
  }
  return out;
}

/** The bench database's name on PostgreSQL (undefined on SQLite). */
const databaseName = (db: BenchDb) =>
  db.env.DATABASE_URL ? decodeURIComponent(new URL(db.env.DATABASE_URL).pathname.slice(1)) : undefined;

/**
 * CPU of the processes that serve a run, in % of one core over the wall time between `start` and
 * the call it returns: each named group of pids, the PostgreSQL backends of the bench database
 * (`postgres`), and this process (`load generator`: autocannon or the sale's buyers). A process
 * that ends during the run is not counted.
 */
export function cpuMeter(db: BenchDb, pids: () => Record<string, number[]>) {
  const name = databaseName(db);
  const groups = () => {
    const g = pids();
    if (name && existsSync('/proc')) g.postgres = backendsOf(name);
    return g;
  };
  const before = new Map<number, number>();
  const start = groups();
  for (const list of Object.values(start)) for (const pid of list) before.set(pid, cpuSeconds(pid) ?? 0);
  const own = process.cpuUsage();
  const wall = performance.now();
  return (): Record<string, number> => {
    const wallS = (performance.now() - wall) / 1000;
    const out: Record<string, number> = {};
    for (const [group, list] of Object.entries(groups())) {
      let s = 0;
      for (const pid of list) {
        const now = cpuSeconds(pid);
        if (now !== undefined) s += now - (before.get(pid) ?? 0);
      }
      out[group] = Math.round((100 * s) / wallS);
    }
    const used = process.cpuUsage(own);
    out['load generator'] = Math.round((used.user + used.system) / 1e4 / wallS);
    return out;
  };
}
