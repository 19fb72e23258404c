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
 * SQLite: statements are prepared once and run synchronously on the module's one connection
 * (the same one knex and MikroORM use). A synchronous statement cannot interleave with anything,
 * so it runs at once unless a transaction is open on the connection; then it waits its turn
 * through the pool, so that it never becomes part of someone else's transaction.
 *
 * `transaction` holds the connection (taken from the pool, so that knex, the ORM and the
 * statements above wait for it) from BEGIN IMMEDIATE to COMMIT and runs its statements prepared,
 * as the statements outside one are: a knex transaction costs several times more (it prepares
 * every statement anew), and it is on the hot path of every debit and every new order.
 */
export function sqliteExecutor(knex: Knex): { execute: Execute; transaction: Transaction } {
  const pool = knex.client as unknown as Pool;
  let conn: SqliteConnection | undefined;
  const cache = new Map<string, SqliteStatement>();
  const viaPool = async <T>(sql: string, params: readonly unknown[]) =>
    (await knex.raw(sql, params as Knex.RawBinding[])) as T[];
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
  const execute: Execute = async <T>(sql: string, params: readonly unknown[]) => {
    if (!conn?.open) {
      use((await pool.acquireConnection()) as SqliteConnection);
      await pool.releaseConnection(conn);
    }
    const c = conn as SqliteConnection;
    if (c.inTransaction) return viaPool<T>(sql, params);
    return runOn<T>(c, sql, params);
  };
  const transaction: Transaction = async (fn) => {
    const c = (await pool.acquireConnection()) as SqliteConnection;
    try {
      runOn(c, 'begin immediate', []);
      const result = await fn(async <T>(sql: string, params: readonly unknown[]) => runOn<T>(c, sql, params));
      runOn(c, 'commit', []);
      return result;
    } catch (err) {
      if (c.open && c.inTransaction) runOn(c, 'rollback', []);
      throw err;
    } finally {
      await pool.releaseConnection(c);
    }
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
