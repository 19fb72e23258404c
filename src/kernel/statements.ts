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

/**
 * SQLite: statements are prepared once and run synchronously on the module's one connection
 * (the same one knex and MikroORM use). A synchronous statement cannot interleave with anything,
 * so it runs at once unless a transaction is open on the connection; then it waits its turn
 * through the pool, so that it never becomes part of someone else's transaction.
 */
export function sqliteExecutor(knex: Knex): Execute {
  const pool = knex.client as unknown as Pool;
  let conn: SqliteConnection | undefined;
  const cache = new Map<string, SqliteStatement>();
  const viaPool = async <T>(sql: string, params: readonly unknown[]) =>
    (await knex.raw(sql, params as Knex.RawBinding[])) as T[];
  return async <T>(sql: string, params: readonly unknown[]) => {
    if (!conn?.open) {
      conn = (await pool.acquireConnection()) as SqliteConnection;
      await pool.releaseConnection(conn);
      cache.clear();
    }
    if (conn.inTransaction) return viaPool<T>(sql, params);
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = conn.prepare(sql);
      cache.set(sql, stmt);
    }
    if (stmt.reader) return stmt.all(...params) as T[];
    stmt.run(...params);
    return [];
  };
}

/**
 * PostgreSQL: each statement becomes a named prepared statement (parsed and planned once per
 * connection) on a client borrowed from the ORM's own pool.
 */
export function pgExecutor(knex: Knex): Execute {
  const pool = knex.client as unknown as Pool;
  const named = new Map<string, { name: string; text: string }>();
  return async <T>(sql: string, params: readonly unknown[]) => {
    let q = named.get(sql);
    if (!q) {
      let n = 0;
      q = { name: `tr_${named.size}`, text: sql.replace(/\?/g, () => `$${++n}`) };
      named.set(sql, q);
    }
    const client = (await pool.acquireConnection()) as PgClient;
    try {
      return (await client.query({ ...q, values: params })).rows as T[];
    } finally {
      await pool.releaseConnection(client);
    }
  };
}
