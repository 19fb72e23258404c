import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * How often the checkpointer copies the WAL back into the database file. Between two passes the
 * WAL holds at most what was written in the meantime; each pass costs two fsyncs, off the loop.
 */
const CHECKPOINT_INTERVAL_MS = 100;
/**
 * The connection's own autocheckpoint (pages), left as the backstop: it runs only if the
 * checkpointer falls behind or is gone, and restarts the WAL when continuous writes leave no
 * moment for a passive pass to catch up.
 */
export const BACKSTOP_AUTOCHECKPOINT_PAGES = 10_000;

// Plain CommonJS, evaluated: the thread needs no TypeScript loader, in development or from dist/.
const SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // A failed pass (a disk hiccup) is retried at the next tick; the backstop covers the meantime.
  }
}, workerData.intervalMs);
parentPort.once('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export interface Checkpointer {
  /** Stops the thread and closes its connection, so that the module's own connection closes last. */
  stop(): Promise<void>;
}

/**
 * SQLite runs its autocheckpoint inside the commit that crosses the threshold: on a module's one
 * connection that is a copy of ~1,000 pages and two fsyncs on the event loop every few hundred
 * writes, which every request in flight waits out. A worker thread with its own connection does
 * that work instead: PASSIVE neither waits for nor blocks the writer, readers or other processes.
 * If the thread fails, nothing is lost: the connection's backstop autocheckpoint takes over.
 */
export function startCheckpointer(file: string): Checkpointer {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(SOURCE, { eval: true, workerData: { file, driver, intervalMs: CHECKPOINT_INTERVAL_MS } });
  worker.unref();
  const exited = new Promise<void>((done) => worker.once('exit', () => done()));
  worker.on('error', () => undefined);
  return {
    async stop() {
      worker.postMessage('stop');
      await exited;
    },
  };
}
