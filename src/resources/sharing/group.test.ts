import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupByOrder, ItemGone, type Order } from './group.js';

const order = (a: number, b: number): Order => (a < b ? -1 : a > b ? 1 : 0);
const byKey = (k: (x: number) => number) => (a: number, b: number) => order(k(a), k(b));

test('groups equal items and counts O(N log N) comparisons', () => {
  const items = Array.from({ length: 500 }, (_, i) => i);
  const g = groupByOrder(items, byKey((x) => x % 37));
  assert.equal(g.groups.length, 37);
  for (const grp of g.groups) assert.ok(grp.every((x) => x % 37 === (grp[0] as number) % 37));
  assert.equal(g.groups.flat().length, 500);
  assert.ok(g.calls <= 2 * 500 * Math.log2(500), `${g.calls} comparisons`);
});

test('an item that vanishes mid-sort is dropped and the sort redone', () => {
  let first = true;
  const g = groupByOrder([1, 2, 3, 2, 1], (a, b) => {
    if (first && (a === 3 || b === 3)) {
      first = false;
      throw new ItemGone(3, 'gone');
    }
    return order(a, b);
  });
  assert.deepEqual(g.gone, [3]);
  assert.deepEqual(g.groups.map((x) => x.length).sort(), [2, 2]);
});

test('items found gone after the sort are dropped too', () => {
  const g = groupByOrder([1, 1, 2, 2], order, { stillThere: (x) => x !== 2 });
  assert.deepEqual(g.gone, [2, 2]);
  assert.deepEqual(g.groups, [[1, 1]]);
});

test('other comparator errors propagate', () => {
  assert.throws(() => groupByOrder([1, 2], () => { throw new Error('EPERM'); }), /EPERM/);
});
