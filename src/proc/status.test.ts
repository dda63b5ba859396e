import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseStatus, readStatus, readTaskStatus } from './status.js';
import { readFileSync } from 'node:fs';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

test('status of PID 1 on 6.18: ids, masks, caps, empty Groups with a trailing space', () => {
  const s = parseStatus(fixture('status-pid1.txt'));
  assert.equal(s.name, 'process_api');
  assert.equal(s.state, 'S');
  assert.deepEqual([s.pid, s.tgid, s.ppid, s.tracerPid], [1, 1, 0, 0]);
  assert.deepEqual(s.uid, [0, 0, 0, 0]);
  assert.deepEqual(s.gid, [0, 0, 0, 0]);
  assert.deepEqual(s.groups, []);
  assert.deepEqual(s.nsPid, [1]);
  assert.equal(s.threads, 14);
  assert.deepEqual(s.sigQ, { queued: 0, limit: 96365 });
  assert.equal(s.sigIgn, 0x1000n);
  assert.equal(s.sigCgt, 0x4e8n);
  assert.equal(s.capEff, 0x1ffffffffffn);
  assert.equal(s.capBnd, 0x1fffeffffffn);
  assert.equal(s.capAmb, 0n);
  assert.equal(s.noNewPrivs, false);
  assert.equal(s.seccomp, 0);
  assert.equal(s.umask, 0o22);
  assert.equal(s.kthread, false);
  assert.equal(s.raw['VmSize'], '42356 kB');
});

test('kthreadd: Kthread: 1, all signals ignored, no Vm lines', () => {
  const s = parseStatus(fixture('status-kthread.txt'));
  assert.equal(s.name, 'kthreadd');
  assert.equal(s.kthread, true);
  assert.equal(s.sigIgn, 0xffffffffffffffffn);
});

test('a node process with threads', () => {
  const s = parseStatus(fixture('status-node-threads.txt'));
  assert.equal(s.threads, 7);
  assert.equal(s.kthread, false);
});

test('old-kernel status: missing Umask, Kthread, NSpid, CapAmb, SigQ, NoNewPrivs, Seccomp', () => {
  const s = parseStatus(fixture('status-old-kthread.txt'));
  assert.equal(s.name, 'kworker/0:1');
  assert.equal(s.state, 'I');
  assert.equal(s.umask, undefined);
  assert.equal(s.sigQ, undefined);
  assert.deepEqual(s.nsPid, [17]);
  assert.deepEqual(s.groups, []);
  assert.equal(s.capAmb, 0n);
  assert.equal(s.seccomp, 0);
  assert.equal(s.kthread, true, 'no Kthread line and no VmSize: a kernel thread');
});

test('a status without Pid is refused', () => {
  assert.throws(() => parseStatus('Name:\tx\n'), { name: 'CkptError', code: 'INTERNAL' });
});

test('readStatus(self) and readTaskStatus(self, self)', () => {
  const s = readStatus(process.pid);
  assert.equal(s.pid, process.pid);
  assert.equal(s.ppid, process.ppid);
  assert.equal(s.uid[0], process.getuid?.());
  assert.equal(s.umask, process.umask());
  assert.ok(s.threads >= 1);
  assert.equal(readTaskStatus(process.pid, process.pid).pid, process.pid);
});
