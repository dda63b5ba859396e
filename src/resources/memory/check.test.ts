import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCkptError } from '../../common/errors.js';
import { checkLayout, checkPageCount, checkRuns } from './check.js';
import { MemoryState, type Vma } from './state.js';

const area = (start: bigint, end: bigint, more: Partial<Vma> = {}): Vma => ({
  start, end, prot: 3, shared: false, kind: 'anon', offset: 0n, flags: [], ...more,
});

const state = (vmas: Vma[], more: Partial<MemoryState> = {}): MemoryState => ({
  vmas,
  files: [{ path: '/bin/x', size: 1, mtimeMs: 0, sha1: null }],
  shmem: [],
  mm: { startCode: 0n, endCode: 0n, startData: 0n, endData: 0n, startBrk: 0n, brk: 0n, startStack: 0n, argStart: 0n, argEnd: 0n, envStart: 0n, envEnd: 0n },
  auxv: '',
  exe: 0,
  ...more,
});

const badImage = (re: RegExp) => (e: unknown) => isCkptError(e, 'BAD_IMAGE') && re.test(e.message);

const good = [
  area(0x400000n, 0x401000n, { kind: 'file', file: 0, prot: 5 }),
  area(0x600000n, 0x602000n),
  area(0x7ffd0000n, 0x7ffd2000n, { kind: 'stack' }),
  area(0x7ffe0000n, 0x7ffe2000n, { kind: 'vdso' }),
  area(0xffffffffff600000n, 0xffffffffff601000n, { kind: 'vsyscall' }),
];

test('a consistent layout passes; moved, overlapping and out-of-range areas are refused naming the area', () => {
  checkLayout(7, state(good));
  const cases: [Vma[], RegExp, Partial<MemoryState>?][] = [
    [[good[0]!, area(0x600800n, 0x602000n)], /area 0x600800-0x602000 \(anon\) is not page-aligned/],
    [[good[0]!, area(0x602000n, 0x600000n)], /ends before it starts/],
    [[good[0]!, area(0x600000n, 0x600000n)], /ends before it starts/],
    [[good[1]!, area(0x601000n, 0x603000n)], /area 0x601000-0x603000 \(anon\) overlaps or comes before area 0x600000-0x602000/],
    [[good[1]!, good[0]!], /overlaps or comes before/],
    [[area(1n << 56n, (1n << 56n) + 4096n)], /outside the user address space/],
    [[area(0xffffffffff600000n, 0xffffffffff601000n)], /outside the user address space/],
    [[area(0xffffffffff500000n, 0xffffffffff501000n, { kind: 'vsyscall' })], /outside the user address space/],
    [[area(0x400000n, 0x401000n, { kind: 'file', file: 3 })], /names file 3, which is not in the image/],
    [[area(0x400000n, 0x401000n, { kind: 'file', file: 0, offset: 12n })], /file offset 12, not page-aligned/],
    [[area(0x400000n, 0x401000n, { kind: 'memfd', shared: true, shm: 0 })], /shared memory object 0/],
    [good, /executable \(file 2\) is not in the image/, { exe: 2 }],
  ];
  for (const [vmas, re, more] of cases) assert.throws(() => checkLayout(7, state(vmas, more)), badImage(re), String(re));
});

test('page runs must fall in private areas of the layout, and number as many pages as the dump recorded', () => {
  const s = state([...good.slice(0, 3), area(0x700000n, 0x701000n, { shared: true })]);
  const filled = checkRuns(7, s.vmas, { runs: [{ vaddr: 0x601000n, nrPages: 1 }, { vaddr: 0x7ffd0000n, nrPages: 2 }] });
  assert.equal(filled.size, 2);
  assert.throws(() => checkRuns(7, s.vmas, { runs: [{ vaddr: 0x601000n, nrPages: 2 }] }), badImage(/pages at 0x602000, outside any saved area/));
  assert.throws(() => checkRuns(7, s.vmas, { runs: [{ vaddr: 0x700000n, nrPages: 1 }] }), badImage(/in area 0x700000-0x701000 \(anon, shared\), which holds no saved pages/));
  checkPageCount(7, s, { runs: [] }); // no count recorded (images before 1.1)
  checkPageCount(7, { ...s, pages: 3 }, { runs: [{ vaddr: 0x600000n, nrPages: 1 }, { vaddr: 0x7ffd0000n, nrPages: 2 }] });
  assert.throws(() => checkPageCount(7, { ...s, pages: 3 }, { runs: [] }), badImage(/its pagemap lists 0 pages, the dump saved 3/));
});

test('negative addresses in the layout are refused by the schema, not wrapped or thrown at as a RangeError later', () => {
  const json = JSON.parse(JSON.stringify(state(good), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, unknown>;
  assert.equal(MemoryState.safeParse(json).success, true);
  (json.mm as Record<string, string>).startStack = '-1';
  assert.equal(MemoryState.safeParse(json).success, false);
  json.mm = state(good).mm;
  (json.vmas as Record<string, string>[])[0]!.start = '-4096';
  assert.equal(MemoryState.safeParse(json).success, false);
});
