import type { Knex } from '@mikro-orm/knex';

type Row = Record<string, unknown>;
export type Execute = <T = Row>(sql: string, params: readonly unknown[]) => Promise<T[]>;

interface Pool {
  acquireConnection(): Promise<unknown>;
  releaseConnection(conn: unknown): Promise<void> | void;
}

interface SqliteStatement {
  reader: boolean;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): unknown;
}

interface SqliteConnection {
  open: boolean;
  inTransaction: boolean;
  prepare(sql: string): SqliteStatement;
}

interface PgClient {
  query(q: { name: string; text: string; values: readonly unknown[] }): Promise<{ rows: unknown[] }>;
}

/** Runs `fn` in a transaction on one connection; `fn` runs its statements with the `execute` it is given. */
export type Transaction = <T>(fn: (execute: Execute) => Promise<T>) => Promise<T>;

/**
 * SQLite: statements are prepared once and run synchronously on the module's one connection (the
 * same one knex and MikroORM use), with group commit. The first statement of a turn of the event
 * loop takes the connection from the pool (so that knex and the ORM wait for it) and opens a
 * batch, BEGIN IMMEDIATE; every statement until the end of that turn runs in it at once, and the
 * batch commits when the turn ends (setImmediate). Each statement's promise settles only after
 * the COMMIT, so no caller acts on a write that is not durable or on a read of one. A sale runs
 * dozens of requests at once, so one commit (its WAL frames, the pages they share) serves many
 * statements instead of one each.
 *
 * A statement that fails is undone by SQLite on its own and rejects at once; one that ends the
 * whole transaction (a full disk, an I/O error) fails every statement of the batch. `transaction`
 * runs as a SAVEPOINT inside the batch, alone: statements from other callers wait until it is
 * released or rolled back, and the batch commits only after it, so its rollback undoes its own
 * statements and nothing else. A knex transaction would cost several times more (it prepares
 * every statement anew), and it is on the hot path of every debit and every new order.
 */
/** A plain read: `select …` (not a CTE, which may write). */
const READ = /^\s*select\b/i;

export function sqliteExecutor(knex: Knex): { execute: Execute; transaction: Transaction } {
  const pool = knex.client as unknown as Pool;
  let conn: SqliteConnection | undefined;
  const cache = new Map<string, SqliteStatement>();
  /** Statements are prepared per connection: a new connection (after a reconnect) starts a new cache. */
  const use = (c: SqliteConnection) => {
    if (c !== conn) {
      conn = c;
      cache.clear();
    }
    return c;
  };
  const prepared = (c: SqliteConnection, sql: string) => {
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = c.prepare(sql);
      cache.set(sql, stmt);
    }
    return stmt;
  };
  const runOn = <T>(c: SqliteConnection, sql: string, params: readonly unknown[]): T[] => {
    const stmt = prepared(use(c), sql);
    if (stmt.reader) return stmt.all(...params) as T[];
    stmt.run(...params);
    return [];
  };

  interface Batch {
    c: SqliteConnection;
    settle: { done: () => void; fail: (err: unknown) => void }[];
    /** A transaction (savepoint) is running in the batch: nothing else may run, and the batch may not commit. */
    exclusive: boolean;
    commitDue: boolean;
    /** Set once the batch is over; `error` when it was rolled back. */
    ended: boolean;
    error?: unknown;
  }
  let batch: Batch | undefined;
  let opening: Promise<Batch> | undefined;
  /** Callers waiting for a running transaction to end. */
  let waiting: (() => void)[] = [];

  async function open(): Promise<Batch> {
    const c = use((await pool.acquireConnection()) as SqliteConnection);
    try {
      runOn(c, 'begin immediate', []);
    } catch (err) {
      await pool.releaseConnection(c);
      throw err;
    }
    const b: Batch = { c, settle: [], exclusive: false, commitDue: false, ended: false };
    batch = b;
    setImmediate(() => void commit(b));
    return b;
  }

  /**
   * The open batch when a statement may run in it now (none is, or no transaction runs in it).
   * Callers check and act in one synchronous step, so nothing can slip in between.
   */
  const ready = () => (batch && !batch.exclusive && !batch.ended ? batch : undefined);

  /** Waits until `ready()` may answer a batch: a running transaction ends, or a new batch opens. */
  async function turn(): Promise<void> {
    if (batch?.exclusive) {
      await new Promise<void>((r) => waiting.push(r));
      return;
    }
    if (!batch) {
      opening ??= open().finally(() => {
        opening = undefined;
      });
      await opening;
    }
  }

  /** A batch is over (committed or rolled back): the next statement opens a new one. */
  async function end(b: Batch, err?: unknown) {
    if (b.ended) return;
    b.ended = true;
    b.error = err;
    if (batch === b) batch = undefined;
    for (const s of b.settle) err === undefined ? s.done() : s.fail(err);
    await pool.releaseConnection(b.c);
    const woken = waiting;
    waiting = [];
    for (const wake of woken) wake();
  }

  async function commit(b: Batch) {
    if (batch !== b) return;
    if (b.exclusive) {
      b.commitDue = true;
      return;
    }
    try {
      runOn(b.c, 'commit', []);
    } catch (err) {
      try {
        if (b.c.open && b.c.inTransaction) runOn(b.c, 'rollback', []);
      } catch {
        // The connection is gone; so is its transaction.
      }
      return end(b, err);
    }
    return end(b);
  }

  /** Runs a statement in the batch; a failure that ended the transaction fails the whole batch. */
  function runIn<T>(b: Batch, sql: string, params: readonly unknown[]): T[] {
    if (b.ended) throw b.error ?? new Error('statement on a batch that has already committed');
    try {
      return runOn<T>(b.c, sql, params);
    } catch (err) {
      if (!b.c.open || !b.c.inTransaction) void end(b, err);
      throw err;
    }
  }

  /** Settles once the batch it ran in is committed. */
  const durable = <T>(b: Batch, value: T) =>
    b.ended
      ? b.error === undefined
        ? Promise.resolve(value)
        : Promise.reject(b.error)
      : new Promise<T>((resolve, reject) => b.settle.push({ done: () => resolve(value), fail: reject }));

  const execute: Execute = async <T>(sql: string, params: readonly unknown[]) => {
    // A read while no batch is open runs alone, outside any transaction: it takes no write lock,
    // so a process that only reads this file (a tool, a test) never makes its writer's
    // transactions fail busy. A read while a batch is open runs in it, after its writes.
    if (!batch && !opening && READ.test(sql)) {
      const c = use((await pool.acquireConnection()) as SqliteConnection);
      try {
        return runOn<T>(c, sql, params);
      } finally {
        await pool.releaseConnection(c);
      }
    }
    for (let b = ready(); ; b = ready()) {
      if (b) return durable(b, runIn<T>(b, sql, params));
      await turn();
    }
  };
  const transaction: Transaction = async (fn) => {
    let b = ready();
    while (!b) {
      await turn();
      b = ready();
    }
    b.exclusive = true;
    let result: Awaited<ReturnType<typeof fn>>;
    try {
      runIn(b, 'savepoint tx', []);
      try {
        result = await fn(async <T>(sql: string, params: readonly unknown[]) => runIn<T>(b, sql, params));
        runIn(b, 'release tx', []);
      } catch (err) {
        if (b.c.open && b.c.inTransaction) {
          runOn(b.c, 'rollback to tx', []);
          runOn(b.c, 'release tx', []);
        }
        throw err;
      }
    } finally {
      b.exclusive = false;
      if (b.commitDue) void commit(b);
      const woken = waiting;
      waiting = [];
      for (const wake of woken) wake();
    }
    return durable(b, result);
  };
  return { execute, transaction };
}

/**
 * PostgreSQL: each statement becomes a named prepared statement (parsed and planned once per
 * connection) on a client borrowed from the ORM's own pool. `transaction` holds one client from
 * BEGIN to COMMIT and runs its statements the same way: a knex transaction builds a transactor
 * and a query builder per statement, which the debit and the hold pay for on every purchase.
 */
export function pgExecutor(knex: Knex): { execute: Execute; transaction: Transaction } {
  const pool = knex.client as unknown as Pool;
  const named = new Map<string, { name: string; text: string }>();
  const runOn = async <T>(client: PgClient, sql: string, params: readonly unknown[]): Promise<T[]> => {
    let q = named.get(sql);
    if (!q) {
      let n = 0;
      q = { name: `tr_${named.size}`, text: sql.replace(/\?/g, () => `$${++n}`) };
      named.set(sql, q);
    }
    return (await client.query({ ...q, values: params })).rows as T[];
  };
  const execute: Execute = async <T>(sql: string, params: readonly unknown[]) => {
    const client = (await pool.acquireConnection()) as PgClient;
    try {
      return await runOn<T>(client, sql, params);
    } finally {
      await pool.releaseConnection(client);
    }
  };
  const transaction: Transaction = async (fn) => {
    const client = (await pool.acquireConnection()) as PgClient;
    try {
      await runOn(client, 'begin', []);
      try {
        const result = await fn((sql, params) => runOn(client, sql, params));
        await runOn(client, 'commit', []);
        return result;
      } catch (err) {
        // A broken connection cannot roll back; the server ends its transaction with it.
        await runOn(client, 'rollback', []).catch(() => undefined);
        throw err;
      }
    } finally {
      await pool.releaseConnection(client);
    }
  };
  return { execute, transaction };
}
