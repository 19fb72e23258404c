import { randomUUID } from 'node:crypto';
import type { Clock } from '../../kernel/clock.js';
import { AppError, type ErrorCode, type ErrorDetail } from '../../kernel/errors.js';
import type { Faults } from '../../kernel/faults.js';
import type { Logger } from '../../kernel/logger.js';
import type { Database } from '../../kernel/persistence.js';
import { callOutcome } from '../../kernel/ports.js';
import type { SagaKind, SagaStatus } from './orchestrator.entities.js';

/** A finished saga's answer, as a repeat of its request key gets it again. */
export type Outcome<R> =
  | { ok: true; data: R }
  | { ok: false; code: ErrorCode; message: string; details?: ErrorDetail[] };

export const refusalOf = (err: AppError): Outcome<never> => ({
  ok: false,
  code: err.code,
  message: err.message,
  ...(err.details ? { details: err.details } : {}),
});

/** A saga's answer to its caller: the data, or the refusal thrown. */
export function settle<R>(outcome: Outcome<R>): R {
  if (outcome.ok) return outcome.data;
  throw new AppError(outcome.code, outcome.message, outcome.details);
}

/** The runner lost its claim on the saga (its lease ran out and recovery took it): it must stop. */
export class SagaTakenOver extends AppError {
  constructor() {
    super(
      'SERVICE_UNAVAILABLE',
      'This request took too long and is being completed in the background; check its status shortly.',
    );
  }
}

export interface SagaRun<D> {
  readonly id: string;
  readonly kind: SagaKind;
  readonly orderId: string;
  readonly userId: string;
  step: string;
  data: D;
}

/** What a step decides: the next step (with what it learnt), or the end of the saga and its answer. */
export type StepResult<D, R> =
  | { next: string; data?: Partial<D> }
  | { end: Exclude<SagaStatus, 'RUNNING'>; outcome: Outcome<R> };

export interface SagaFlow<D, R> {
  kind: SagaKind;
  steps: Record<string, (run: SagaRun<D>) => Promise<StepResult<D, R>>>;
  /** Where recovery resumes a saga found at `step` (forward for pay, back for reserve). */
  resume(step: string): string;
}

interface SagaRow {
  id: string;
  kind: SagaKind;
  order_id: string;
  user_id: string;
  step: string;
  status: SagaStatus;
  data: string;
  lease_until: unknown;
  request_key: string | null;
  response: string | null;
}

const COLUMNS = 'id, kind, order_id, user_id, step, status, data, lease_until, request_key, response';

/** A new saga's row, as `start` records it. */
interface NewSaga {
  id: string;
  kind: SagaKind;
  orderId: string;
  userId: string;
  step: string;
  data: string;
  holder: string;
  requestKey: string | null;
}

/** A step (or the end) to record for a saga this runner holds. */
interface StepWrite {
  id: string;
  holder: string;
  step: string;
  status: SagaStatus;
  data: string;
  response: string | null;
}

/** At most this many saga writes go into one statement. */
const MAX_BATCH = 100;

/**
 * Group commit for the saga log. Every saga writes its row before each step, and a sale runs
 * dozens of sagas at once: the writes that arrive while one flush is under way (or in the same
 * turn of the event loop) are written together, one statement for the new sagas and one for the
 * steps, and each write's promise settles only once its row is committed. A step is therefore
 * still recorded before the next one runs, at a fraction of a commit each.
 */
function createSagaWriter(db: Database, clock: Clock, leaseEnd: () => unknown) {
  const sagas = db.table('sagas');
  const pg = db.dialect === 'postgresql';
  interface Pending<W> {
    write: W;
    done: (written: boolean) => void;
    fail: (err: unknown) => void;
  }
  const inserts: Pending<NewSaga>[] = [];
  const updates: Pending<StepWrite>[] = [];
  let flushing = false;
  let scheduled = false;

  const insertRow = "(?, ?, ?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?)";
  const updateRow = pg
    ? '(?::uuid, ?::text, ?::text, ?::text, ?::text, ?::text, ?::timestamptz, ?::timestamptz)'
    : '(?, ?, ?, ?, ?, ?, ?, ?)';
  const rows = (row: string, n: number) => Array.from({ length: n }, () => row).join(', ');

  async function insertAll(batch: NewSaga[], lease: unknown, now: unknown) {
    const values = batch.flatMap((w) => [
      w.id,
      w.kind,
      w.orderId,
      w.userId,
      w.step,
      w.data,
      w.holder,
      lease,
      w.requestKey,
      now,
      now,
    ]);
    const inserted = await db.all<{ id: string }>(
      `insert into ${sagas} (id, kind, order_id, user_id, step, status, data, holder, lease_until, request_key, created_at, updated_at)
       values ${rows(insertRow, batch.length)} on conflict do nothing returning id`,
      values,
    );
    return new Set(inserted.map((r) => r.id));
  }

  async function updateAll(batch: StepWrite[], lease: unknown, now: unknown) {
    const values = batch.flatMap((w) => [w.id, w.holder, w.step, w.status, w.data, w.response, lease, now]);
    const updated = await db.all<{ id: string }>(
      `with v (id, holder, step, status, data, response, lease, now) as (values ${rows(updateRow, batch.length)})
       update ${sagas} set step = v.step, status = v.status, data = v.data, response = v.response,
         lease_until = v.lease, updated_at = v.now
       from v where ${sagas}.id = v.id and ${sagas}.holder = v.holder and ${sagas}.status = 'RUNNING'
       returning ${sagas}.id`,
      values,
    );
    return new Set(updated.map((r) => r.id));
  }

  async function flush() {
    scheduled = false;
    flushing = true;
    const ins = inserts.splice(0, MAX_BATCH);
    const ups = updates.splice(0, MAX_BATCH);
    const lease = leaseEnd();
    const now = db.time(clock.now());
    try {
      // Both at once: two round trips side by side on PostgreSQL, one group commit on SQLite.
      const none = Promise.resolve(new Set<string>());
      const [inserted, updated] = await Promise.all([
        ins.length
          ? insertAll(
              ins.map((p) => p.write),
              lease,
              now,
            )
          : none,
        ups.length
          ? updateAll(
              ups.map((p) => p.write),
              lease,
              now,
            )
          : none,
      ]);
      for (const p of ins) p.done(inserted.has(p.write.id));
      for (const p of ups) p.done(updated.has(p.write.id));
    } catch (err) {
      for (const p of [...ins, ...ups]) p.fail(err);
    } finally {
      flushing = false;
      if (inserts.length || updates.length) schedule();
    }
  }

  function schedule() {
    if (scheduled || flushing) return;
    scheduled = true;
    setImmediate(() => void flush());
  }

  const enqueue =
    <W>(queue: () => Pending<W>[]) =>
    (write: W) =>
      new Promise<boolean>((done, fail) => {
        queue().push({ write, done, fail });
        schedule();
      });

  return {
    /** Records a new saga; false when one of its kind is running for the order, or its key was used. */
    insert: enqueue<NewSaga>(() => inserts),
    /** Records a step or the end; false when this runner no longer holds the saga. */
    update: enqueue<StepWrite>(() => updates),
  };
}

/**
 * The saga log and its runner. A saga is one row: inserted before its first step, its `step`
 * rewritten before each next step runs, and closed with its answer; the writes of concurrent
 * sagas are committed together (createSagaWriter). Each write also renews the runner's lease; a
 * runner whose lease ran out has lost the saga to recovery and stops at its next write. Every
 * step is idempotent (a key derived from the saga), so recovery re-runs the recorded step and
 * goes on from there.
 */
export function createSagaLog(db: Database, clock: Clock, faults: Faults, log: Logger, leaseMs: number) {
  const sagas = db.table('sagas');
  const flows = new Map<SagaKind, SagaFlow<any, any>>();
  const leaseEnd = () => db.time(clock.now() + leaseMs);
  const writer = createSagaWriter(db, clock, leaseEnd);

  const toRun = <D>(row: SagaRow): SagaRun<D> => ({
    id: row.id,
    kind: row.kind,
    orderId: row.order_id,
    userId: row.user_id,
    step: row.step,
    data: JSON.parse(row.data) as D,
  });

  /** Rewrites the step (and data) while this runner holds the saga; throws SagaTakenOver when it does not. */
  async function advance(run: SagaRun<unknown>, holder: string, status: SagaStatus, response?: string) {
    const written = await writer.update({
      id: run.id,
      holder,
      step: run.step,
      status,
      data: JSON.stringify(run.data),
      response: response ?? null,
    });
    if (!written) throw new SagaTakenOver();
  }

  /** Runs the saga's steps from its recorded one until it ends; its answer is the saga's outcome. */
  async function drive<D, R>(run: SagaRun<D>, holder: string): Promise<Outcome<R>> {
    const flow = flows.get(run.kind) as SagaFlow<D, R>;
    for (;;) {
      const step = flow.steps[run.step];
      if (!step) throw new Error(`saga ${run.id} (${run.kind}) is at an unknown step "${run.step}"`);
      if (faults.enabled) await faults.at(`${run.kind}.${run.step}`);
      const result = await step(run);
      if ('next' in result) {
        run.step = result.next;
        if (result.data) run.data = { ...run.data, ...result.data };
        await advance(run, holder, 'RUNNING');
        continue;
      }
      if (result.end === 'DONE' && faults.enabled) await faults.at(`${run.kind}.done`);
      await advance(run, holder, result.end, JSON.stringify(result.outcome));
      return result.outcome;
    }
  }

  async function find(where: string, params: Record<string, unknown>): Promise<SagaRow | undefined> {
    const [row] = await db.all<SagaRow>(`select ${COLUMNS} from ${sagas} where ${where}`, params);
    return row;
  }

  /** Takes over a saga whose runner's lease ran out; answers the run, or undefined when someone else has it. */
  async function claim(id: string): Promise<{ run: SagaRun<unknown>; holder: string } | undefined> {
    const holder = randomUUID();
    const now = db.time(clock.now());
    const [row] = await db.all<SagaRow>(
      `update ${sagas} set holder = :holder, lease_until = :lease, updated_at = :now
       where id = :id and status = 'RUNNING' and lease_until <= :now returning ${COLUMNS}`,
      { holder, lease: leaseEnd(), now, id },
    );
    return row ? { run: toRun(row), holder } : undefined;
  }

  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  return {
    register(flow: SagaFlow<any, any>) {
      flows.set(flow.kind, flow);
    },

    /**
     * Records a new saga and drives it. Answers `busy` instead when a saga of this kind is already
     * running for the order, or the request key was used before: the caller then waits for that one.
     */
    async start<D, R>(input: {
      kind: SagaKind;
      orderId: string;
      userId: string;
      step: string;
      data: D;
      requestKey?: string;
    }): Promise<{ outcome: Outcome<R> } | { busy: true }> {
      const holder = randomUUID();
      const id = randomUUID();
      const inserted = await writer.insert({
        id,
        kind: input.kind,
        orderId: input.orderId,
        userId: input.userId,
        step: input.step,
        data: JSON.stringify(input.data),
        holder,
        requestKey: input.requestKey ?? null,
      });
      if (!inserted) return { busy: true };
      const run: SagaRun<D> = { ...input, id };
      return { outcome: await drive<D, R>(run, holder) };
    },

    /** The saga recorded under a request key. */
    byKey: (requestKey: string) => find('request_key = :requestKey', { requestKey }),

    /**
     * Waits for a saga to end and answers its outcome; a saga whose runner died (lease out) is
     * taken over and driven here. Gives up with 503 after `maxMs`.
     */
    async awaitSaga<R>(id: string, maxMs: number): Promise<Outcome<R>> {
      const until = Date.now() + maxMs;
      for (let pause = 10; ; pause = Math.min(pause * 2, 200)) {
        const row = await find('id = :id', { id });
        if (!row) throw new Error(`saga ${id} vanished`);
        if (row.status !== 'RUNNING') return JSON.parse(row.response as string) as Outcome<R>;
        if (db.date(row.lease_until).getTime() <= clock.now()) {
          const claimed = await claim(id);
          if (claimed) return drive<unknown, R>(claimed.run, claimed.holder);
        }
        if (Date.now() >= until) throw new SagaTakenOver();
        await sleep(pause);
      }
    },

    /** The running saga of a kind for an order, if any. */
    running: (orderId: string, kind: SagaKind) =>
      find(`order_id = :orderId and kind = :kind and status = 'RUNNING'`, { orderId, kind }),

    /**
     * Recovery: every running saga whose lease ran out is claimed (one at a time, so that two
     * recoverers never share one) and driven from where recovery resumes its kind. Answers how
     * many were finished.
     */
    async recover(limit = 100): Promise<number> {
      const stale = await db.all<{ id: string }>(
        `select id from ${sagas} where status = 'RUNNING' and lease_until <= ? order by lease_until limit ?`,
        [db.time(clock.now()), limit],
      );
      let finished = 0;
      for (const { id } of stale) {
        const claimed = await claim(id);
        if (!claimed) continue;
        const flow = flows.get(claimed.run.kind);
        if (!flow) continue;
        claimed.run.step = flow.resume(claimed.run.step);
        try {
          const outcome = await drive(claimed.run, claimed.holder);
          finished++;
          log.info({ saga: id, kind: claimed.run.kind, ok: outcome.ok }, 'saga recovered');
        } catch (err) {
          log.warn({ err, saga: id, kind: claimed.run.kind }, 'saga recovery did not finish; it is retried later');
        }
      }
      return finished;
    },
  };
}

export type SagaLog = ReturnType<typeof createSagaLog>;

/**
 * Calls another module, retrying while the outcome is unknown or undelivered (the call carries an
 * idempotency key or is naturally repeatable, so a retry applies it at most once). A refusal is
 * thrown at once; after the last try the PortCallError is thrown and the saga is left to recovery.
 */
export async function withRetry<T>(call: () => Promise<T>, tries = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (callOutcome(err) === 'refused' || attempt >= tries) throw err;
      await new Promise((r) => setTimeout(r, 50 * 4 ** (attempt - 1)));
    }
  }
}

/** A refusal (typed 4xx) rather than an outage: the saga can decide on it. */
export const isRefusal = (err: unknown): err is AppError => callOutcome(err) === 'refused';

/**
 * A call with retries (withRetry) whose refusal is an answer for the saga to decide on, not an
 * error; an outage is thrown, and the saga is left to recovery.
 */
export async function refusedOr<T>(call: () => Promise<T>): Promise<{ ok: T } | { refused: AppError }> {
  try {
    return { ok: await withRetry(call) };
  } catch (err) {
    if (isRefusal(err)) return { refused: err };
    throw err;
  }
}
