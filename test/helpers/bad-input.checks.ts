import { BAD_UUIDS, isError, isInvalid, MALFORMED_JSON } from './assert.js';
import { type Fixture, HOSTILE, notJson, pathOf, withBody, withField, withNul } from './bad-input.cases.js';
import type { Context } from './bad-input.js';
import { streamed } from './stream.js';

/** One test of the suite: its title and what it checks. */
export interface Check {
  title: string;
  /** Writes rows on purpose and counts them itself, instead of running inside `writesNothing`. */
  writes?: boolean;
  run(c: Context<Fixture>): Promise<void>;
}

/** The checks of what a request carries (its body, its query, its identifiers), after the table's own. */
export const BODY_CHECKS = {
  valid: {
    title: 'the valid requests of the table succeed (the table itself is right)',
    writes: true,
    async run({ t, endpoints, send }) {
      for (const e of endpoints) {
        const res = await send(e, e.body ? { body: e.body } : {});
        t.true(res.status < 300, `${e.name}: ${res.status} ${JSON.stringify(res.body)}`);
      }
    },
  },
  malformed: {
    title: 'malformed and non-object JSON answer 400 VALIDATION_ERROR',
    async run({ t, endpoints, send }) {
      for (const e of endpoints.filter(withBody)) {
        for (const raw of MALFORMED_JSON) {
          isError(t, await send(e, { raw, headers: { 'content-type': 'application/json' } }), 400, 'VALIDATION_ERROR');
        }
      }
    },
  },
  wrongTypes: {
    title: 'fields of the wrong type answer 400 naming the field',
    async run({ t, endpoints, send }) {
      for (const e of endpoints) {
        for (const [field, values] of Object.entries(e.wrongTypes ?? {})) {
          for (const value of values) {
            const res = e.body
              ? await send(e, { body: withField(e.body, field, value) })
              : await send(e, { query: { ...e.query, [field]: String(value) } });
            isInvalid(t, res, field);
          }
        }
      }
    },
  },
  missing: {
    title: 'missing fields, empty bodies and extra fields answer 400 naming the field',
    async run({ t, endpoints, send }) {
      for (const e of endpoints) {
        for (const field of e.required ?? []) {
          const { [field]: _, ...rest } = e.body ?? {};
          isInvalid(t, await send(e, { body: rest }), field);
        }
        if (e.required?.length || e.refusesEmpty) {
          isError(t, await send(e, { body: {} }), 400, 'VALIDATION_ERROR');
          isError(t, await send(e), 400, 'VALIDATION_ERROR');
        }
        if (withBody(e)) {
          isInvalid(t, await send(e, { body: { ...e.body, is_admin: true } }), 'is_admin');
          for (const field of e.unknown ?? [])
            isInvalid(t, await send(e, { body: withField(e.body!, field, true) }), field);
        }
        isInvalid(t, await send(e, { query: { ...e.query, debug: '1' } }), 'debug');
      }
    },
  },
  tooLarge: {
    title: 'a body over 64 KiB answers 413 PAYLOAD_TOO_LARGE, with or without Content-Length',
    async run({ t, app, endpoints, send, tokenFor }) {
      for (const e of endpoints.filter(withBody)) {
        isError(t, await send(e, { body: { ...e.body, padding: 'x'.repeat(64 * 1024) } }), 413, 'PAYLOAD_TOO_LARGE');
        const token = await tokenFor(e);
        const chunks = Array.from({ length: 70 }, (_, i) => (i === 0 ? '{"padding":"' : 'y'.repeat(1024)));
        const res = await streamed(`${app.url}${pathOf(e)}`, chunks, {
          method: e.method,
          headers: token ? { authorization: `Bearer ${token}` } : {},
        });
        isError(t, res, 413, 'PAYLOAD_TOO_LARGE');
      }
    },
  },
  notJson: {
    title: 'bodies that are not JSON answer 415 UNSUPPORTED_MEDIA_TYPE',
    async run({ t, endpoints, send }) {
      for (const e of endpoints.filter(withBody)) {
        for (const [type, raw] of notJson(e.body)) {
          isError(t, await send(e, { raw, headers: { 'content-type': type } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
        }
      }
    },
  },
  uuids: {
    title: 'malformed UUIDs in the path or the body answer 400 INVALID_UUID',
    async run({ t, endpoints, send }) {
      for (const bad of BAD_UUIDS) {
        for (const e of endpoints) {
          for (const param of Object.keys(e.params ?? {})) {
            const res = await send(e, { params: { [param]: bad }, ...(e.body ? { body: e.body } : {}) });
            isInvalid(t, res, param, 'INVALID_UUID');
          }
          for (const field of e.uuids ?? []) {
            isInvalid(t, await send(e, { body: withField(e.body!, field, bad) }), field, 'INVALID_UUID');
          }
        }
      }
    },
  },
  hostile: {
    title: 'SQL- and script-like strings get a clean 4xx, or are stored verbatim',
    writes: true,
    async run({ t, endpoints, send, rows }) {
      const expected = await rows();
      for (const e of endpoints) {
        for (const [field, outcome] of Object.entries(e.strings ?? {})) {
          for (const hostile of HOSTILE) {
            const res = e.body
              ? await send(e, { body: withField(e.body, field, hostile) })
              : await send(e, { query: { ...e.query, [field]: hostile } });
            const what = `${e.name}.${field} = ${hostile}`;
            if (outcome !== 'accepted') {
              isError(t, res, outcome.status, outcome.code);
              continue;
            }
            t.true(res.status === 200 || res.status === 201, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
            t.is(res.body.success, true, what);
            // Where the answer shows the field, it shows it as it was sent.
            if (res.body.data?.[field] !== undefined) t.is(res.body.data[field], hostile, what);
            for (const [table, n] of Object.entries(e.writes ?? {})) expected[table] += n;
          }
        }
      }
      t.deepEqual(await rows(), expected, 'the accepted requests wrote their rows, the refused ones none');
    },
  },
  nul: {
    title: 'text with a NUL character answers 400 naming the field, on every database',
    async run({ t, endpoints, send }) {
      for (const e of endpoints) {
        for (const field of Object.keys(e.strings ?? {})) {
          const res = e.body
            ? await send(e, { body: withField(e.body, field, withNul(e.body[field])) })
            : await send(e, { query: { ...e.query, [field]: withNul(e.query?.[field]) } });
          isInvalid(t, res, field);
        }
      }
    },
  },
} satisfies Record<string, Check>;
