/** Values for raw SQL: positional for `?` placeholders, or by name for `:name` placeholders. */
export type Params = readonly unknown[] | Readonly<Record<string, unknown>>;

interface Compiled {
  /** The statement with every `:name` turned into `?`. */
  sql: string;
  /** The name behind each `?`, in order; a name used twice appears twice. */
  names: string[];
  distinct: number;
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;
const compiled = new Map<string, Compiled>();

/**
 * Turns `:name` placeholders into `?`, once per SQL text. Quoted text ('…', "…") is copied as it
 * is, and so is PostgreSQL's `::type` cast, so that neither a time like '12:30' nor a cast reads
 * as a placeholder.
 */
export function compileNamed(sql: string): Compiled {
  let out = compiled.get(sql);
  if (out) return out;
  const names: string[] = [];
  let text = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      // A doubled quote inside quoted text is an escaped quote, so scanning on to the next one is right.
      const end = sql.indexOf(c, i + 1);
      if (end < 0) throw new Error(`unterminated ${c} in SQL: ${sql}`);
      text += sql.slice(i, end + 1);
      i = end + 1;
    } else if (c === ':' && sql[i + 1] === ':') {
      text += '::';
      i += 2;
    } else if (c === ':') {
      NAME.lastIndex = i + 1;
      const name = NAME.exec(sql)?.[0];
      if (!name) throw new Error(`a ':' that starts no placeholder name at ${i} in SQL: ${sql}`);
      names.push(name);
      text += '?';
      i += 1 + name.length;
    } else if (c === '?') {
      throw new Error(`SQL with named placeholders has a positional '?' too: ${sql}`);
    } else {
      text += c;
      i++;
    }
  }
  out = { sql: text, names, distinct: new Set(names).size };
  compiled.set(sql, out);
  return out;
}

/** The positional form of a statement and its values; positional params pass through untouched. */
export function bind(sql: string, params: Params): { sql: string; values: readonly unknown[] } {
  if (Array.isArray(params)) return { sql, values: params };
  const named = params as Readonly<Record<string, unknown>>;
  const { sql: text, names, distinct } = compileNamed(sql);
  const values = new Array<unknown>(names.length);
  for (let i = 0; i < names.length; i++) {
    if (!Object.hasOwn(named, names[i])) throw new Error(`no value for :${names[i]} in SQL: ${sql}`);
    values[i] = named[names[i]];
  }
  if (Object.keys(named).length !== distinct) {
    const unknown = Object.keys(named).filter((k) => !names.includes(k));
    throw new Error(`values for names the SQL does not use (${unknown.join(', ')}): ${sql}`);
  }
  return { sql: text, values };
}
