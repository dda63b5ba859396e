import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_IOV, UNIT_BYTES, unitsOf } from './split.js';

const PAGE = 4096;

test('unitsOf cuts segments at the unit size and keeps file offsets and addresses in step', () => {
  const units = unitsOf([
    { vaddr: 0x10000000n, len: UNIT_BYTES * 2 + PAGE, fileOffset: PAGE },
    { vaddr: 0x90000000n, len: PAGE, fileOffset: PAGE + UNIT_BYTES * 2 + PAGE },
  ]);
  assert.equal(units.length, 3);
  assert.deepEqual(units.map((u) => u.bytes), [UNIT_BYTES, UNIT_BYTES, 2 * PAGE]);
  assert.equal(units[1]!.segs[0]!.vaddr, 0x10000000n + BigInt(UNIT_BYTES));
  assert.equal(units[1]!.fileStart, PAGE + UNIT_BYTES);
  assert.deepEqual(units[2]!.segs.map((s) => [s.vaddr, s.fileOffset]), [
    [0x10000000n + BigInt(2 * UNIT_BYTES), PAGE + 2 * UNIT_BYTES],
    [0x90000000n, PAGE + 2 * UNIT_BYTES + PAGE],
  ]);
  for (let i = 1; i < units.length; i++) assert.equal(units[i]!.fileStart, units[i - 1]!.fileEnd, 'file-contiguous');
});

test('unitsOf starts a new unit where the file offset jumps, or segments reach IOV_MAX', () => {
  const jump = unitsOf([
    { vaddr: 0n, len: PAGE, fileOffset: 0 },
    { vaddr: 0x2000n, len: PAGE, fileOffset: 3 * PAGE },
  ]);
  assert.equal(jump.length, 2);
  const many = unitsOf(Array.from({ length: 3000 }, (_, i) => ({ vaddr: BigInt(i * 2 * PAGE), len: PAGE, fileOffset: i * PAGE })));
  assert.equal(many.reduce((n, u) => n + u.segs.length, 0), 3000);
  for (const u of many) assert.ok(u.segs.length <= MAX_IOV && u.bytes <= UNIT_BYTES);
});
