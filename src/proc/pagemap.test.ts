import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync } from 'node:fs';
import {
  decodePagemapEntry, openPagemap, populatedWindows, presentPageRuns, presentPageSpans, readPagemap, readPagemapRange,
} from './pagemap.js';
import { readMaps } from './maps.js';

const PRESENT = 1n << 63n;
const SWAPPED = 1n << 62n;

test('decodePagemapEntry: present with pfn, flags, and a swap entry', () => {
  const p = decodePagemapEntry(PRESENT | (1n << 61n) | (1n << 56n) | 0x12345n);
  assert.deepEqual(p, {
    present: true, swapped: false, exclusive: true, softDirty: false, uffdWp: false, fileOrSharedAnon: true,
    pfn: 0x12345n, swapType: 0, swapOffset: 0n,
  });
  const s = decodePagemapEntry(SWAPPED | (1n << 55n) | (1n << 57n) | (0xabcn << 5n) | 3n);
  assert.deepEqual([s.present, s.swapped, s.softDirty, s.uffdWp, s.swapType, s.swapOffset, s.pfn], [
    false, true, true, true, 3, 0xabcn, 0n,
  ]);
  assert.equal(decodePagemapEntry(0n).present, false);
});

function pagemapOf(bits: bigint[]): Buffer {
  const buf = Buffer.alloc(bits.length * 8);
  bits.forEach((v, i) => buf.writeBigUInt64LE(v, i * 8));
  return buf;
}

test('presentPageRuns groups present and swapped pages, ignores file-only bits', () => {
  const buf = pagemapOf([PRESENT, PRESENT | 5n, 0n, 1n << 61n, SWAPPED, PRESENT, 0n, PRESENT]);
  assert.deepEqual(presentPageRuns(buf, 0x7f0000000000n), [
    { start: 0x7f0000000000n, pages: 2 },
    { start: 0x7f0000004000n, pages: 2 },
    { start: 0x7f0000007000n, pages: 1 },
  ]);
  assert.deepEqual(presentPageRuns(Buffer.alloc(0), 0n), []);
  assert.deepEqual(presentPageRuns(pagemapOf([0n, 0n]), 0n), []);
});

test('presentPageRuns works on an unaligned Buffer and at 64-bit addresses', () => {
  const backing = Buffer.alloc(8 * 3 + 1);
  const buf = backing.subarray(1);
  buf.writeBigUInt64LE(PRESENT, 8);
  assert.deepEqual(presentPageRuns(buf, 0xffffffffff600000n), [{ start: 0xffffffffff601000n, pages: 1 }]);
});

test('presentPageSpans packs (first, pages) pairs and grows past its first guess', () => {
  const bits = Array.from({ length: 2000 }, (_, i) => (i % 2 === 0 ? PRESENT : 0n));
  const spans = presentPageSpans(pagemapOf(bits));
  assert.equal(spans.length, 2000);
  assert.deepEqual([...spans.subarray(0, 4)], [0, 1, 2, 1]);
  assert.deepEqual([...spans.subarray(-2)], [1998, 1]);
  assert.equal(presentPageRuns(pagemapOf(bits), 0x1000n)[999]?.start, 0x1000n + 1998n * 4096n);
});

test('presentPageRuns finds every run in 1 GiB worth of entries (262144)', () => {
  const n = 262144;
  const buf = Buffer.alloc(n * 8);
  // Alternating runs of 100 present and 28 absent pages. Speed is measured in bench/, not here.
  for (let i = 0; i < n; i++) if (i % 128 < 100) buf.writeBigUInt64LE(PRESENT | BigInt(i), i * 8);
  const runs = presentPageRuns(buf, 0x7f0000000000n);
  assert.equal(runs.length, n / 128);
  assert.deepEqual(runs[1], { start: 0x7f0000000000n + 128n * 4096n, pages: 100 });
});

test('readPagemap(self) and readPagemapRange on the stack', () => {
  const stack = readMaps(process.pid).find((m) => m.path === '[stack]');
  assert.ok(stack !== undefined);
  const buf = readPagemap(process.pid, stack.start, stack.end);
  assert.equal(buf.length, Number((stack.end - stack.start) / 4096n) * 8);
  const runs = presentPageRuns(buf, stack.start);
  assert.ok(runs.length > 0, 'the top of the stack is in use');
  const last = runs.at(-1);
  assert.ok(last !== undefined && last.start + BigInt(last.pages) * 4096n <= stack.end);

  const fd = openPagemap(process.pid);
  try {
    const page = readPagemapRange(fd, stack.end - 4096n, stack.end);
    assert.equal(page.length, 8);
    assert.deepEqual(page, buf.subarray(buf.length - 8));
  } finally {
    closeSync(fd);
  }
});

test('populatedWindows covers every present page of an area in windows of at most the given size', () => {
  const area = readMaps(process.pid).find((m) => m.path === '[heap]') ?? readMaps(process.pid).find((m) => m.path === '[stack]');
  assert.ok(area !== undefined);
  const fd = openPagemap(process.pid);
  try {
    assert.deepEqual(populatedWindows(fd, { start: area.start, end: area.end }), [{ start: area.start, end: area.end }], 'a small area is one window');
    const window = 4n * 4096n;
    const windows = populatedWindows(fd, { start: area.start, end: area.end }, window);
    const present = presentPageRuns(readPagemapRange(fd, area.start, area.end), area.start);
    assert.ok(present.length > 0);
    for (const w of windows) assert.ok(w.start >= area.start && w.end <= area.end && w.end - w.start <= window && w.start < w.end);
    for (let i = 1; i < windows.length; i++) assert.ok(windows[i]!.start >= windows[i - 1]!.end, 'sorted, not overlapping');
    for (const r of present) {
      for (let p = 0; p < r.pages; p++) {
        const at = r.start + BigInt(p) * 4096n;
        assert.ok(windows.some((w) => w.start <= at && at < w.end), `page 0x${at.toString(16)} in a window`);
      }
    }
  } finally {
    closeSync(fd);
  }
});
