import test from 'ava';
import { timeOrderedId } from '../../src/kernel/ids.js';
import { isUuid } from '../../src/kernel/schemas.js';

/** The kernel's time-ordered ids: valid version-7 UUIDs, unique, and in order even within one millisecond. */

test('ids are version-7 UUIDs of the RFC 9562 variant, carrying the time they were made', (t) => {
  const before = Date.now();
  const id = timeOrderedId();
  const after = Date.now();
  t.true(isUuid(id), id);
  t.is(id[14], '7', 'version 7');
  t.true('89ab'.includes(id[19]), 'the RFC variant');
  const msecs = Number.parseInt(id.replace(/-/g, '').slice(0, 12), 16);
  t.true(msecs >= before && msecs <= after + 1, `${msecs} between ${before} and ${after}`);
});

test('many ids in a burst (several per millisecond, more than one random pool) are unique and strictly increasing', (t) => {
  const ids = Array.from({ length: 5000 }, () => timeOrderedId());
  t.is(new Set(ids).size, ids.length);
  const outOfOrder = ids.filter((id, i) => i > 0 && id <= ids[i - 1]);
  t.deepEqual(outOfOrder, [], 'each id sorts after the one before');
});
