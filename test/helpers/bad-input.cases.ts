import type { TestUser } from './users.js';

/** Who may call an endpoint: the kernel's access rules. */
export type Access = 'public' | 'user' | 'admin' | 'refresh';

/** What a hostile string in a field leads to: an error code, or legitimate acceptance. */
export type Outcome = { status: number; code: string } | 'accepted';

/** One row of a module's bad-input table: an endpoint, a valid request to it and what must be refused. */
export interface Endpoint {
  name: string;
  method: 'GET' | 'POST' | 'PATCH';
  /** The route as the module declares it, with `:name` for a path parameter. */
  path: string;
  /** Valid values of the path parameters; each is a UUID, so a malformed one answers 400 INVALID_UUID. */
  params?: Record<string, string>;
  auth: Access;
  /** A valid body, for endpoints that take one. */
  body?: Record<string, unknown>;
  /** A valid query, for endpoints that take one. */
  query?: Record<string, string>;
  required?: string[];
  /** An empty body is refused though no single field is required (a patch needs at least one). */
  refusesEmpty?: boolean;
  /** Values answered with 400 naming the field; a dotted name reaches inside the body (`seat_map.rows[0].seats`). */
  wrongTypes?: Record<string, unknown[]>;
  /** Nested fields the schema does not know, each refused naming it (`is_admin` and `debug` are always tried). */
  unknown?: string[];
  /** Body fields that take a UUID. */
  uuids?: string[];
  strings?: Record<string, Outcome>;
  /** The rows one accepted request adds, by counted table. */
  writes?: Record<string, number>;
}

/** What every module's fixture has: a customer and the admin, both logged in. */
export interface Fixture {
  user: TestUser;
  admin: TestUser;
}

/** Between 8 and 50 characters each, so that they are also a valid password and a valid hall id. */
export const HOSTILE = [
  "' OR 1=1 --",
  '"; DROP TABLE users; --',
  '"; DROP TABLE seats; --',
  '<script>alert(1)</script>',
  "admin'--",
  '50%_off\\x',
  '{"$gt": ""}',
];

export const withBody = (e: Endpoint) => e.method !== 'GET';

/** The endpoint's concrete path: its parameters filled in (`params` overriding the table's), then `query`. */
export function pathOf(e: Endpoint, params: Record<string, string> = {}, query?: Record<string, string>) {
  const all = { ...e.params, ...params };
  const path = e.path.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(all[name]));
  return query ? `${path}?${new URLSearchParams(query)}` : path;
}

/** A copy of `body` with the field (`a.b[0].c`, as validation details name it) set to `value`. */
export function withField(body: Record<string, unknown>, field: string, value: unknown): Record<string, unknown> {
  const copy = structuredClone(body);
  const keys = field.replace(/\[(\d+)\]/g, '.$1').split('.');
  let at = copy as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) at = at[key] as Record<string, unknown>;
  at[keys.at(-1)!] = value;
  return copy;
}

/** The valid value of a field with a NUL character inside it, or some text with one where there is none. */
export function withNul(valid: unknown): string {
  return typeof valid === 'string' && valid.length > 0
    ? `${valid.slice(0, 1)}\u0000${valid.slice(1)}`
    : 'with a NUL \u0000 inside';
}

/** Bodies of the media types a JSON API refuses, each carrying the endpoint's valid body. */
export function notJson(body: Record<string, unknown> = {}): [string, string][] {
  // Never empty: a request without a body has no media type to refuse.
  const entries = Object.keys(body).length ? Object.entries(body) : [['a', 'b']];
  const fields = entries.map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
  return [
    ['text/plain', JSON.stringify(body)],
    ['application/x-www-form-urlencoded', String(new URLSearchParams(fields))],
    ['multipart/form-data; boundary=xyz', '--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n--xyz--'],
    ['application/xml', `<body>${fields.map(([k, v]) => `<${k}>${v}</${k}>`).join('')}</body>`],
    ['application/octet-stream', 'binary'],
  ];
}

/** The methods a path does not serve, by the table: each must answer 405 with Allow. */
export function unservedMethods(endpoints: Endpoint[]): [string, string][] {
  const served = new Map<string, Set<string>>();
  for (const e of endpoints) served.set(pathOf(e), (served.get(pathOf(e)) ?? new Set()).add(e.method));
  return [...served].flatMap(([path, methods]) =>
    ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'].filter((m) => !methods.has(m)).map((m): [string, string] => [m, path]),
  );
}

/** Paths one segment below each endpoint's that no route of the table matches: each must answer 404. */
export function unknownPaths(endpoints: Endpoint[]): string[] {
  const routes = endpoints.map((e) => new RegExp(`^${e.path.replace(/:\w+/g, '[^/]+')}$`));
  return endpoints.map((e) => `${pathOf(e)}/nope`).filter((path) => !routes.some((r) => r.test(path)));
}
