import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PendingPages } from './pending.js';

const K = 4096n;

test('take splits ranges and keeps what is left around the window', () => {
  const p = new PendingPages([{ start: 0n, end: 16n * K, src: 0n }, { start: 32n * K, end: 40n * K, src: 100n * K }]);
  assert.deepEqual(p.take(4n * K, 8n * K), [{ start: 4n * K, end: 8n * K, src: 4n * K }]);
  assert.equal(p.bytes, 20 * 4096);
  assert.ok(!p.has(5n * K) && p.has(3n * K) && p.has(8n * K));
  assert.deepEqual(p.take(12n * K, 34n * K), [{ start: 12n * K, end: 16n * K, src: 12n * K }, { start: 32n * K, end: 34n * K, src: 100n * K }]);
  assert.deepEqual(p.takeFront(1 << 30), [{ start: 0n, end: 4n * K, src: 0n }]);
  assert.deepEqual(p.takeFront(4096), [{ start: 8n * K, end: 9n * K, src: 8n * K }]);
});

test('move follows mremap; put and clone keep the order', () => {
  const p = new PendingPages([{ start: 0n, end: 4n * K, src: 0n }]);
  p.move({ from: 2n * K, to: 100n * K, len: 4n * K });
  assert.deepEqual(p.take(0n, 1000n * K), [{ start: 0n, end: 2n * K, src: 0n }, { start: 100n * K, end: 102n * K, src: 2n * K }]);
  assert.ok(p.empty);
  p.put([{ start: 10n * K, end: 11n * K, src: 5n }, { start: 1n * K, end: 2n * K, src: 1n }]);
  const c = p.clone();
  assert.deepEqual(c.takeFront(1 << 20), [{ start: 1n * K, end: 2n * K, src: 1n }]);
  assert.equal(p.bytes, 2 * 4096);
});
