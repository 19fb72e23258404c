import type { IncomingMessage } from 'node:http';
import type Koa from 'koa';
import type pg from 'pg';

/**
 * What the two bare baselines (bench/baseline.ts, bench/sale-baseline.ts) share: a refusal with
 * its status and code, the body read by hand, a PostgreSQL transaction on one pooled client, the
 * envelope of an error, and listening. Deliberately none of the app's own code: the baselines
 * measure what the database allows without it.
 */

export class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolveBody, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** BEGIN, `fn` on the client, COMMIT (ROLLBACK when it throws), and the client back to the pool. */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('begin');
    const out = await fn(c);
    await c.query('commit');
    return out;
  } catch (err) {
    await c.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}

/** A refusal as the API's error envelope; anything else is logged and answered 500. */
export function answerError(ctx: Koa.Context, err: unknown) {
  if (!(err instanceof Refusal)) {
    console.error(err);
    ctx.status = 500;
    ctx.body = { success: false, error_code: 'INTERNAL_ERROR', message: 'Internal error.' };
    return;
  }
  ctx.status = err.status;
  ctx.body = { success: false, error_code: err.code, message: err.message };
}

/** Listens on 127.0.0.1 and says where, for the bench that reads the log. */
export function listen(app: Koa, port: number, label: string) {
  const server = app.listen(port, '127.0.0.1', () => {
    const address = server.address();
    console.log(`${label} listening on ${typeof address === 'object' ? address?.port : address}`);
  });
  return server;
}
