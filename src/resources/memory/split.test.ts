import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RemoteTask } from '../../infect/index.js';
import { iovecsOf, MAX_IOV, shareCopy, UNIT_BYTES, unitsOf, type Unit } from './split.js';

const PAGE = 4096;

test('unitsOf cuts segments at the unit size and keeps file offsets and addresses in step', () => {
  const units = unitsOf([
    { vaddr: 0x10000000n, len: UNIT_BYTES * 2 + PAGE, fileOffset: PAGE, remoteOk: true },
    { vaddr: 0x90000000n, len: PAGE, fileOffset: PAGE + UNIT_BYTES * 2 + PAGE, remoteOk: true },
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

test('unitsOf starts a new unit where the file offset jumps, the target may not copy, or segments reach IOV_MAX', () => {
  const jump = unitsOf([
    { vaddr: 0n, len: PAGE, fileOffset: 0, remoteOk: true },
    { vaddr: 0x2000n, len: PAGE, fileOffset: 3 * PAGE, remoteOk: true },
  ]);
  assert.equal(jump.length, 2);
  const mixed = unitsOf([
    { vaddr: 0n, len: PAGE, fileOffset: 0, remoteOk: true },
    { vaddr: 0x2000n, len: PAGE, fileOffset: PAGE, remoteOk: false },
  ]);
  assert.deepEqual(mixed.map((u) => u.remoteOk), [true, false]);
  const many = unitsOf(Array.from({ length: 3000 }, (_, i) => ({ vaddr: BigInt(i * 2 * PAGE), len: PAGE, fileOffset: i * PAGE, remoteOk: true })));
  assert.equal(many.reduce((n, u) => n + u.segs.length, 0), 3000);
  for (const u of many) assert.ok(u.segs.length <= MAX_IOV && u.bytes <= UNIT_BYTES);
});

test('iovecsOf lays out (address, length) pairs of every segment in order', () => {
  const units = unitsOf([
    { vaddr: 0x1000n, len: PAGE, fileOffset: 0, remoteOk: true },
    { vaddr: 0x5000n, len: 2 * PAGE, fileOffset: PAGE, remoteOk: true },
  ]);
  const { iov, count } = iovecsOf(units);
  assert.equal(count, 2);
  assert.deepEqual([iov.readBigUInt64LE(0), iov.readBigUInt64LE(8), iov.readBigUInt64LE(16), iov.readBigUInt64LE(24)], [0x1000n, 4096n, 0x5000n, 8192n]);
});

/** A stand-in for the target's thread: each call finishes after `pollsPerCall` polls and reports `result(group)`. */
function fakeRemote(opts: { pollsPerCall: number; result?: (group: readonly Unit[]) => bigint }) {
  const calls: Unit[][] = [];
  let running: Unit[] | undefined;
  let polls = 0;
  const finish = () => {
    const g = running!;
    running = undefined;
    return opts.result ? opts.result(g) : BigInt(g.reduce((n, u) => n + u.bytes, 0));
  };
  const remote = {
    poll: () => {
      assert.ok(running, 'poll only while a call runs');
      if (++polls < opts.pollsPerCall) return undefined;
      return finish();
    },
    end: () => finish(),
  } as unknown as RemoteTask;
  const begin = (group: readonly Unit[]) => {
    assert.equal(running, undefined, 'one call at a time');
    running = [...group];
    polls = 0;
    calls.push(running);
  };
  return { remote, begin, calls };
}

function bigUnits(n: number, remoteOk = (_i: number) => true): Unit[] {
  return unitsOf(Array.from({ length: n }, (_, i) => ({ vaddr: BigInt(i) * 0x10000000n, len: UNIT_BYTES, fileOffset: i * UNIT_BYTES, remoteOk: remoteOk(i) })));
}

test('shareCopy does every unit exactly once between the target and ckpt', () => {
  for (const pollsPerCall of [1, 3, 50]) {
    const units = bigUnits(40);
    const { remote, begin, calls } = fakeRemote({ pollsPerCall });
    const local: Unit[] = [];
    let reported = 0;
    const { byTarget } = shareCopy({ units, remote, begin, local: (u) => void local.push(u), onBytes: (n) => (reported += n) });
    const remoteDone = calls.flat();
    const all = [...remoteDone, ...local];
    assert.equal(all.length, units.length, `pollsPerCall ${pollsPerCall}: each unit once`);
    assert.equal(new Set(all).size, units.length);
    assert.equal(byTarget, remoteDone.length * UNIT_BYTES);
    assert.equal(reported, units.length * UNIT_BYTES, 'progress counts every byte once');
    assert.ok(calls.length > 0 && local.length > 0, 'both sides work');
    for (const g of calls) for (let i = 1; i < g.length; i++) assert.equal(g[i]!.fileStart, g[i - 1]!.fileEnd, 'a call covers one file range');
  }
});

test('shareCopy redoes in ckpt what a short or failed call of the target left', () => {
  const units = bigUnits(20);
  let n = 0;
  // First call fails outright, the second stops half way into its second unit, the rest succeed.
  const { remote, begin, calls } = fakeRemote({
    pollsPerCall: 2,
    result: (g) => (++n === 1 ? -14n : n === 2 ? BigInt(UNIT_BYTES + UNIT_BYTES / 2) : BigInt(g.length * UNIT_BYTES)),
  });
  const local: Unit[] = [];
  const { byTarget } = shareCopy({ units, remote, begin, local: (u) => void local.push(u) });
  const first = calls[0]!;
  const second = calls[1]!;
  for (const u of first) assert.ok(local.includes(u), 'failed call: all its units redone');
  assert.ok(!local.includes(second[0]!), 'the unit the short call finished is not redone');
  for (const u of second.slice(1)) assert.ok(local.includes(u), 'the rest of the short call is redone');
  const covered = new Set([...local, ...calls.flat()]);
  assert.equal(covered.size, units.length);
  assert.equal(byTarget + local.length * UNIT_BYTES, units.length * UNIT_BYTES);
});

test('shareCopy never gives the target a unit it may not copy', () => {
  const units = bigUnits(30, (i) => i % 3 !== 0);
  const { remote, begin, calls } = fakeRemote({ pollsPerCall: 2 });
  const local: Unit[] = [];
  shareCopy({ units, remote, begin, local: (u) => void local.push(u) });
  for (const u of calls.flat()) assert.ok(u.remoteOk);
  assert.equal(local.length + calls.flat().length, units.length);
});

test('shareCopy waits for the target call before rethrowing an error of its own side', () => {
  const units = bigUnits(40);
  const { remote, begin, calls } = fakeRemote({ pollsPerCall: 1000 });
  let ended = false;
  const end = remote.end.bind(remote);
  (remote as { end: () => bigint }).end = () => ((ended = true), end());
  assert.throws(() => shareCopy({ units, remote, begin, local: () => { throw new Error('local failed'); } }), /local failed/);
  assert.equal(calls.length, 1);
  assert.ok(ended, 'the running call was collected');
});
