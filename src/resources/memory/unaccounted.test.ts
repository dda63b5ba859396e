import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitRuns, unaccounted } from './unaccounted.js';
import type { Vma } from './state.js';

const P = 4096n;
const area = (start: bigint, end: bigint, extra: Partial<Vma> = {}) => ({ start: start * P, end: end * P, prot: 0, shared: false, flags: ['mr', 'mw'], kind: 'anon', ...extra }) as unknown as Vma;

test('only private, never-writable, uncharged areas are filled through /proc/PID/mem', () => {
  const none = area(0n, 1n);
  const charged = area(1n, 2n, { flags: ['mr', 'mw', 'ac'] });
  const writable = area(2n, 3n, { prot: 3 });
  const shared = area(3n, 4n, { shared: true });
  const noreserve = area(4n, 5n, { flags: ['nr'] });
  assert.deepEqual([...unaccounted(new Set([none, charged, writable, shared, noreserve]))], [none]);
});

test('runs are cut at the edges of the areas, file offsets following', () => {
  const runs = [{ vaddr: 0n, nrPages: 10, fileOffset: 100n * P }, { vaddr: 20n * P, nrPages: 2, fileOffset: 0n }];
  const { rest, inside } = splitRuns(runs, new Set([area(2n, 4n), area(9n, 12n)]));
  const pages = (r: { vaddr: bigint; nrPages: number; fileOffset: bigint }) => [r.vaddr / P, r.nrPages, r.fileOffset / P];
  assert.deepEqual(rest.map(pages), [[0n, 2, 100n], [4n, 5, 104n], [20n, 2, 0n]]);
  assert.deepEqual(inside.map(pages), [[2n, 2, 102n], [9n, 1, 109n]]);
});
