import test, { type ExecutionContext } from 'ava';
import { DATABASES, type Response, sharedApp, type TestApp } from './app.js';
import { ACCESS_CHECKS } from './bad-input.access.js';
import { type Endpoint, type Fixture, pathOf } from './bad-input.cases.js';
import { BODY_CHECKS, type Check } from './bad-input.checks.js';
import { login } from './users.js';

export * from './bad-input.cases.js';

/**
 * The bad-input suite every module runs: its endpoint table against malformed, mistyped,
 * oversized and hostile input. Each refusal is the documented 4xx in the envelope, and the
 * module's tables are counted before and after to show that nothing was written. Serial,
 * because those counts cover the whole module.
 */

export interface SendOptions {
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  query?: Record<string, string>;
  params?: Record<string, string>;
  token?: string;
}

/** What a test of the suite works with: a fresh fixture, its table, and requests made as the table says. */
export interface Context<F extends Fixture> {
  t: ExecutionContext;
  app: TestApp;
  f: F;
  endpoints: Endpoint[];
  endpoint(name: string): Endpoint;
  /** A token for the endpoint's access rule; user sessions are fresh, as some requests end them. */
  tokenFor(e: Endpoint): Promise<string | undefined>;
  /** Sends a request to an endpoint, its valid query and the right token unless the options say otherwise. */
  send(e: Endpoint, options?: SendOptions): Promise<Response>;
  /** Rows of the module's tables, by name. */
  rows(): Promise<Record<string, number>>;
  /** Runs `body` and asserts that no row of the module's tables was written meanwhile. */
  writesNothing(body: () => Promise<void>): Promise<void>;
}

/** The tests of the suite, by name, in the order they run. */
const CHECKS = { ...BODY_CHECKS, ...ACCESS_CHECKS };
export type CheckName = keyof typeof CHECKS;

type Extra<F extends Fixture> = (c: Context<F>) => Promise<void>;

export interface BadInputSpec<F extends Fixture> {
  fixture(app: TestApp): Promise<F>;
  endpoints(f: F): Endpoint[];
  /** Rows of the module's tables, by name. */
  rows(app: TestApp): Promise<Record<string, number>>;
  /** The module's own cases, run at the end of the test of that name (hostile: after its row count). */
  extra?: Partial<Record<CheckName, Extra<F>>>;
}

/** Registers the suite on every database. */
export function badInputSuite<F extends Fixture>(spec: BadInputSpec<F>) {
  for (const kind of DATABASES) {
    const app = sharedApp(kind);
    const title = (s: string) => `[${kind}] ${s}`;
    const context = async (t: ExecutionContext): Promise<Context<F>> => {
      const f = await spec.fixture(app);
      const endpoints = spec.endpoints(f);
      const tokenFor = async (e: Endpoint) => {
        if (e.auth === 'public') return undefined;
        if (e.auth === 'admin') return f.admin.token;
        const session = await login(app, f.user.email, f.user.password);
        return e.auth === 'refresh' ? session.refreshToken : session.token;
      };
      return {
        t,
        app,
        f,
        endpoints,
        endpoint: (name) => endpoints.find((e) => e.name === name)!,
        tokenFor,
        rows: () => spec.rows(app),
        async send(e, options = {}) {
          const token = 'token' in options ? options.token : await tokenFor(e);
          return app.request(e.method, pathOf(e, options.params, options.query ?? e.query), { ...options, token });
        },
        async writesNothing(body) {
          const before = await spec.rows(app);
          await body();
          t.deepEqual(await spec.rows(app), before, 'nothing is written');
        },
      };
    };
    for (const [key, check] of Object.entries(CHECKS) as [CheckName, Check][]) {
      test.serial(title(check.title), async (t) => {
        const c = await context(t);
        const extra = spec.extra?.[key];
        if (check.writes) {
          await check.run(c);
          await extra?.(c);
        } else {
          await c.writesNothing(async () => {
            await check.run(c);
            await extra?.(c);
          });
        }
      });
    }
  }
}
