import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { comparer, sameData } from './check-compare.js';

test('sameData says equal only where isDeepStrictEqual does', () => {
  const cases: [unknown, unknown][] = [
    [{ a: 1, b: [1, 2n, 'x'], c: { d: null } }, { a: 1, b: [1, 2n, 'x'], c: { d: null } }],
    [{ a: 1 }, { a: 2 }],
    [{ a: 1n }, { a: 1 }],
    [[1, 2], [1, 2, 3]],
    [{ a: undefined }, {}],
    [{}, { a: undefined }],
    [Buffer.from('ab'), Buffer.from('ab')],
    [Buffer.from('ab'), Buffer.from('ac')],
    [new Map([[1, 2]]), new Map([[1, 3]])],
    [[1], { 0: 1, length: 1 }],
    [NaN, NaN],
    ['1', 1],
  ];
  for (const [a, b] of cases) {
    if (sameData(a, b)) assert.ok(isDeepStrictEqual(a, b), `${String(a)} ${String(b)}`);
  }
  assert.ok(sameData({ a: [{ b: 1n }] }, { a: [{ b: 1n }] }));
  assert.ok(!sameData({ a: [{ b: 1n }] }, { a: [{ b: 2n }] }));
});

test('a comparer names the field that differs, also past sameData', () => {
  const diffs: string[] = [];
  const compare = comparer(diffs);
  compare('process 1 limits', { limits: [{ resource: 7, soft: 777n }] }, { limits: [{ resource: 7, soft: 1024n }] });
  compare('process 1 misc', { comm: 'a' }, { comm: 'a' });
  assert.equal(diffs.length, 1);
  assert.match(diffs[0]!, /process 1 limits\.limits\.0\.soft: saved "777", restored "1024"/);
});
