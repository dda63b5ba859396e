import { test } from 'node:test';
import assert from 'node:assert/strict';
import { takeUnwritten } from './dirty.js';

const P = 4096n;
const PRESENT = 0x80000000;

/** A pagemap window of `n` pages, the ones in `present` present (anonymous). */
function window(n: number, present: number[]): Buffer {
  const b = Buffer.alloc(n * 8);
  for (const i of present) b.writeUInt32LE((PRESENT | 0x01000000) >>> 0, i * 8 + 4);
  return b;
}

test('unwritten present pages go to the parent and are cleared; written and absent ones stay', () => {
  const start = 100n * P;
  const pm = window(8, [0, 1, 2, 3, 5, 6]);
  const out = takeUnwritten(pm, { start, written: [{ start: start + P, end: start + 3n * P }, { start: start + 6n * P, end: start + 8n * P }], anonOnly: false });
  assert.deepEqual(out, [{ vaddr: start, nrPages: 1 }, { vaddr: start + 3n * P, nrPages: 1 }, { vaddr: start + 5n * P, nrPages: 1 }]);
  const left = [...Array(8).keys()].filter((i) => pm.readUInt32LE(i * 8 + 4) !== 0);
  assert.deepEqual(left, [1, 2, 6]);
});

test('nothing written: every present page is in the parent, as one run per span', () => {
  const pm = window(4, [0, 1, 2, 3]);
  assert.deepEqual(takeUnwritten(pm, { start: 0n, written: [], anonOnly: false }), [{ vaddr: 0n, nrPages: 4 }]);
});
