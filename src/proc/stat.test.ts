import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKernelThread, parseStat, readStat, readTaskStat } from './stat.js';
import { listTasks } from './tasks.js';
import { isCkptError } from '../common/errors.js';
import { readFileSync } from 'node:fs';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

test('stat of cat on 6.18', () => {
  const s = parseStat(fixture('stat-cat.txt'));
  assert.deepEqual([s.pid, s.comm, s.state, s.ppid, s.pgrp, s.session], [3465, 'cat', 'R', 3458, 3458, 2742]);
  assert.equal(s.ttyNr, 0);
  assert.equal(s.tpgid, -1);
  assert.equal(s.flags, 0x400000);
  assert.equal(isKernelThread(s), false);
  assert.equal(s.minflt, 115);
  assert.equal(s.priority, 20);
  assert.equal(s.numThreads, 1);
  assert.equal(s.startTime, 21812n);
  assert.equal(s.vsize, 3133440n);
  assert.equal(s.rss, 405n);
  assert.equal(s.rsslim, 0xffffffffffffffffn);
  assert.equal(s.startCode, 94248930676736n);
  assert.equal(s.startStack, 140735789203712n);
  assert.equal(s.exitSignal, 17);
  assert.equal(s.startBrk, 94249710604288n);
  assert.equal(s.envEnd, 140735789207531n);
  assert.equal(s.exitCode, 0);
});

test('kthreadd has PF_KTHREAD', () => {
  const s = parseStat(fixture('stat-kthread.txt'));
  assert.equal(s.comm, 'kthreadd');
  assert.equal(isKernelThread(s), true);
  assert.equal(s.startCode, 0n);
});

test('comm containing ") (" and spaces: the last ")" ends it; huge values stay exact', () => {
  const s = parseStat(fixture('stat-odd-comm.txt'));
  assert.equal(s.pid, 4242);
  assert.equal(s.comm, 'a) (b ) c)');
  assert.equal(s.state, 'S');
  assert.equal(s.ppid, 4);
  assert.equal(isKernelThread(s), true);
  assert.equal(s.vsize, 18446744073709551615n);
  assert.equal(s.rss, 24n);
  assert.equal(s.exitSignal, 17);
  assert.equal(s.policy, 41);
  assert.equal(s.startData, 45n);
  assert.equal(s.exitCode, 52);
});

test('a truncated stat line is refused', () => {
  assert.throws(() => parseStat('1 (x) S 0 1 1'), { name: 'CkptError', code: 'INTERNAL' });
  assert.throws(() => parseStat('garbage'), { name: 'CkptError', code: 'INTERNAL' });
});

test('readStat(self) and readTaskStat for every thread', () => {
  const s = readStat(process.pid);
  assert.equal(s.pid, process.pid);
  assert.equal(s.ppid, process.ppid);
  assert.equal(isKernelThread(s), false);
  const tids = listTasks(process.pid);
  assert.equal(s.numThreads, tids.length);
  for (const tid of tids) assert.equal(readTaskStat(process.pid, tid).pid, tid);
});

test('reading a PID that cannot exist throws NO_PROCESS', () => {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  const pid = Math.max(999999999, max + 1);
  assert.throws(() => readStat(pid), (e: unknown) => {
    assert.ok(isCkptError(e, 'NO_PROCESS'));
    assert.equal(e.message, `Cannot read /proc/${pid}/stat: process ${pid} does not exist`);
    return true;
  });
  assert.throws(() => readTaskStat(process.pid, pid), { name: 'CkptError', code: 'NO_PROCESS' });
});
