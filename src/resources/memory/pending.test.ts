import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PendingPages } from './pending.js';

const K = 4096n;

function pending(): PendingPages {
  const p = new PendingPages();
  p.push({ vaddr: 10n * K, len: 10 * 4096, fileOffset: 4096, viaMem: false });
  p.push({ vaddr: 30n * K, len: 2 * 4096, fileOffset: 11 * 4096, viaMem: true });
  return p;
}

test('take cuts pieces out of the middle, with their file offsets', () => {
  const p = pending();
  assert.equal(p.has(0n, 10n * K), false);
  assert.equal(p.has(0n, 11n * K), true);
  const got = p.take(12n * K, 31n * K);
  assert.deepEqual(got, [
    { vaddr: 12n * K, len: 8 * 4096, fileOffset: 3 * 4096, viaMem: false },
    { vaddr: 30n * K, len: 4096, fileOffset: 11 * 4096, viaMem: true },
  ]);
  assert.equal(p.bytes, 3 * 4096);
  assert.deepEqual(p.take(0n, 100n * K).map((x) => [x.vaddr / K, x.len / 4096, x.fileOffset / 4096]), [[10n, 2, 1], [31n, 1, 12]]);
  assert.equal(p.empty, true);
});

test('takeFirst takes the lowest bytes; move follows an mremap; putBack returns pieces', () => {
  const p = pending();
  const first = p.takeFirst({ bytes: 3 * 4096, maxPieces: 8 });
  assert.deepEqual(first.map((x) => [x.vaddr / K, x.len / 4096]), [[10n, 3]]);
  p.move({ from: 30n * K, to: 5n * K, len: 2n * K });
  const all = p.take(0n, 100n * K);
  assert.deepEqual(all.map((x) => [x.vaddr / K, x.len / 4096, x.fileOffset / 4096]), [[5n, 2, 11], [13n, 7, 4]]);
  p.putBack(first);
  assert.equal(p.bytes, 3 * 4096);
  assert.equal(p.has(10n * K, 11n * K), true);
});
