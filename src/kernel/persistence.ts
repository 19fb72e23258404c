import { join, resolve } from 'node:path';
import { BetterSqliteDriver } from '@mikro-orm/better-sqlite';
import { type EntitySchema, MikroORM, type Options } from '@mikro-orm/core';
import type { EntityManager, Knex } from '@mikro-orm/knex';
import { Migrator } from '@mikro-orm/migrations';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { bind, type Params } from './binds.js';
import { BACKSTOP_AUTOCHECKPOINT_PAGES, startCheckpointer } from './checkpoint.js';
import type { Config } from './config.js';
import { AppError } from './errors.js';
import { requestScope } from './logger.js';
import { type Dialect, type MigrationClass, type MigrationContext, SchemaMigration } from './migration.js';
import { type Execute, pgExecutor, sqliteExecutor } from './statements.js';
import { kernelEntities, kernelMigrations } from './tables.js';

export { type Dialect, type MigrationClass, type MigrationContext, SchemaMigration };

type Row = Record<string, unknown>;

/** Where a transaction handle keeps its statement runner (see `tx`). */
const OWN_TX = Symbol('transaction');

/** What a module gets to persist with: its own ORM (model, migrations, reads) and raw SQL for hot paths. */
export interface Database {
  readonly module: string;
  readonly dialect: Dialect;
  readonly orm: MikroORM;
  /** The request-scoped entity manager (a fresh fork outside a request). */
  readonly em: EntityManager;
  readonly knex: Knex;
  /** The quoted, schema-qualified name of one of this module's tables, for raw SQL. */
  table(name: string): string;
  /** A timestamp as this dialect stores it (SQLite: epoch milliseconds). */
  time(date: Date | number): Date | number;
  /** A stored timestamp back to a Date. */
  date(value: unknown): Date;
  /**
   * Parameterised raw SQL inside or outside a transaction: `?` placeholders with an array, or
   * `:name` placeholders with an object of values.
   */
  all<T = Row>(sql: string, params?: Params, trx?: Knex.Transaction): Promise<T[]>;
  /**
   * A transaction; its statements are `all(sql, params, trx)`. `trx` is a handle for `all` only
   * (not a knex transaction: see statements.ts), so build no query on it.
   */
  tx<T>(fn: (trx: Knex.Transaction) => Promise<T>): Promise<T>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  module: string;
  entities: EntitySchema[];
  migrations: { name: string; class: MigrationClass }[];
  config: Config;
}

/** How long opening a PostgreSQL connection may take before it counts as an outage. */
export const CONNECT_TIMEOUT_MS = 3000;

function ormOptions({ module, entities, migrations, config }: DatabaseOptions): Options {
  const url = config.moduleDatabaseUrls[module] || config.databaseUrl;
  const common: Options = {
    // The kernel's tables first: a module's migration may move its rows into them.
    entities: [...kernelEntities(), ...entities],
    extensions: [Migrator],
    migrations: {
      migrationsList: [...kernelMigrations, ...migrations],
      snapshot: false,
      transactional: true,
      allOrNothing: true,
      silent: true,
    },
    allowGlobalContext: false,
    contextName: module,
    debug: false,
    discovery: { warnWhenNoEntities: false },
  };
  if (url) {
    return {
      ...common,
      driver: PostgreSqlDriver,
      clientUrl: url,
      schema: module,
      pool: { min: 1, max: config.databasePoolMax },
      // Our raw statements are named and prepared once per connection (statements.ts); PostgreSQL
      // would still plan most of them anew on every execution, judging a plan for the bound values
      // cheaper than the generic one. Every one of them is keyed by ids or bound to a partial index,
      // where the generic plan is the same plan: planning it once saves a quarter of the database's
      // CPU during a sale (ADR 5). The ORM's own queries are unnamed and planned as before.
      // A connection attempt that gets no answer (a server or network that drops packets) fails
      // after CONNECT_TIMEOUT_MS instead of the pool's 30 s: requests answer 503 soon, and the pool
      // tries afresh on the next one, so the module comes back by itself once the server does.
      driverOptions: {
        connection: { options: '-c plan_cache_mode=force_generic_plan', connectionTimeoutMillis: CONNECT_TIMEOUT_MS },
      },
    } as Options;
  }
  return {
    ...common,
    driver: BetterSqliteDriver,
    dbName: join(resolve(config.dataDir), `${module}.sqlite`),
    pool: {
      min: 1,
      max: 1,
      // WAL lets readers run beside the writer; busy_timeout waits out another process's write lock;
      // checkpoints are the checkpointer's job (checkpoint.ts), the connection's is the backstop.
      afterCreate: (conn: { pragma: (s: string) => unknown }, done: (err: Error | null, c: unknown) => void) => {
        conn.pragma('journal_mode = WAL');
        conn.pragma('synchronous = NORMAL');
        conn.pragma('busy_timeout = 5000');
        conn.pragma(`wal_autocheckpoint = ${BACKSTOP_AUTOCHECKPOINT_PAGES}`);
        done(null, conn);
      },
    },
  } as Options;
}

/**
 * A lost database connection is an outage, not a bug: answer 503 instead of 500. `timeout expired`
 * is all that pg says of a connection attempt that ran past CONNECT_TIMEOUT_MS.
 */
const OUTAGE =
  /^timeout expired|ECONNREFUSED|ECONNRESET|terminating connection|Connection terminated|Connection ended unexpectedly|connect ETIMEDOUT|database system is|not currently accepting connections|database "[^"]+" does not exist|SQLITE_CANTOPEN|Timeout acquiring a connection/;

export function asOutage(err: unknown): unknown {
  if (
    err instanceof Error &&
    (err.name === 'ConnectionException' || OUTAGE.test(`${err.message} ${(err as { code?: string }).code ?? ''}`))
  ) {
    return new AppError('SERVICE_UNAVAILABLE', 'The database cannot be reached; try again shortly.');
  }
  return err;
}

/**
 * Brings the module's schema up to date. On PostgreSQL several instances of a slice may start at
 * once on a fresh database: each migrates under a session lock of its schema, so that the first
 * creates the tables and the others, once it is done, find nothing left to run.
 */
async function migrate(orm: MikroORM) {
  if (orm.config.get('driver') !== PostgreSqlDriver) return void (await orm.getMigrator().up());
  const knex = (orm.em as EntityManager).getKnex();
  const lock = `ticketremaster:migrate:${orm.config.get('schema')}`;
  const conn = await knex.client.acquireConnection();
  try {
    await knex.raw('select pg_advisory_lock(hashtext(?))', [lock]).connection(conn);
    try {
      await orm.getMigrator().up();
    } finally {
      await knex.raw('select pg_advisory_unlock(hashtext(?))', [lock]).connection(conn);
    }
  } finally {
    await knex.client.releaseConnection(conn);
  }
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const orm = await MikroORM.init(ormOptions(options));
  try {
    await migrate(orm);
  } catch (err) {
    await orm.close(true);
    throw err;
  }
  const dialect: Dialect = orm.config.get('driver') === PostgreSqlDriver ? 'postgresql' : 'sqlite';
  const checkpointer = dialect === 'sqlite' ? startCheckpointer(orm.config.get('dbName')) : undefined;
  const knex = (orm.em as EntityManager).getKnex();
  const schema = orm.config.get('schema');
  const quote = (id: string) => `"${id.replace(/"/g, '""')}"`;
  const { execute, transaction } = dialect === 'sqlite' ? sqliteExecutor(knex) : pgExecutor(knex);
  const run = async <T>(statement: string, params: Params = [], trx?: Knex.Transaction): Promise<T[]> => {
    const { sql, values } = bind(statement, params);
    try {
      if (!trx) return await execute<T>(sql, values);
      const own = (trx as unknown as { [OWN_TX]?: Execute })[OWN_TX];
      if (own) return await own<T>(sql, values);
      const result = await trx.raw(sql, values as Knex.RawBinding[]);
      return (dialect === 'postgresql' ? result.rows : result) as T[];
    } catch (err) {
      throw asOutage(err);
    }
  };
  return {
    module: options.module,
    dialect,
    orm,
    /** One fork per request and module, made only when a handler uses the ORM. */
    get em() {
      const scope = requestScope.getStore();
      if (!scope) return orm.em.fork() as EntityManager;
      scope.ems ??= new Map();
      let em = scope.ems.get(options.module) as EntityManager | undefined;
      if (!em) {
        em = orm.em.fork() as EntityManager;
        scope.ems.set(options.module, em);
      }
      return em;
    },
    knex,
    table: (name) => (dialect === 'postgresql' && schema ? `${quote(schema)}.${quote(name)}` : quote(name)),
    time: (d) => (dialect === 'sqlite' ? +d : new Date(d)),
    date: (v) =>
      v instanceof Date ? v : new Date(typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : (v as number)),
    all: run,
    async tx(fn) {
      try {
        // Our own transaction on one connection of the module's pool; `trx` only carries its statements.
        return await transaction((own) => fn({ [OWN_TX]: own } as unknown as Knex.Transaction));
      } catch (err) {
        throw asOutage(err);
      }
    },
    async ping() {
      try {
        await knex.raw('select 1');
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      await checkpointer?.stop();
      await orm.close(true);
    },
  };
}
