import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { seizeProcess, findSyscallSite, RemoteTask } from '../../src/infect/index.js';
import { ptrace, readMemory, NR, NT } from '../../src/sys/index.js';
import { startVictim, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

function lastTick(v: Victim): number {
  const ticks = [...v.output().matchAll(/TICK pid=\d+ counter=(\d+) mem=(\w+)/g)];
  for (const t of ticks) assert.equal(t[2], 'PASS', `victim reported memory corruption:\n${v.output()}`);
  return Number(ticks.at(-1)?.[1] ?? 0);
}

function inMapping(pid: number, addr: bigint, pred: (perms: string, path: string) => boolean): boolean {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').some((l) => {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(l);
    return !!m && BigInt(`0x${m[1]}`) <= addr && addr < BigInt(`0x${m[2]}`) && pred(m[3]!, m[4] ?? '');
  });
}

test('seize a running victim, read its registers and memory, inject syscalls, release it unharmed', async () => {
  const v = startVictim('counter');
  cleanups.push(() => v.cleanup());
  const ready = await v.waitFor(/READY pid=(\d+) counter=(0x[0-9a-f]+) buf=(0x[0-9a-f]+) len=(\d+) sum=\d+ tls=(0x[0-9a-f]+)/);
  await v.waitFor(/TICK/);
  const [bufAddr, len, tls] = [BigInt(ready[3]!), Number(ready[4]), BigInt(ready[5]!)];

  const proc = seizeProcess(v.pid);
  try {
    assert.deepEqual(proc.tids, [v.pid]);
    const regs = ptrace.getRegs(v.pid);
    assert.equal(regs.fs_base, tls, 'fs_base is the thread pointer the victim reported');
    assert.ok(inMapping(v.pid, regs.rip, (p) => p[2] === 'x'), 'rip is in executable memory');
    assert.ok(inMapping(v.pid, regs.rsp, (_p, path) => path === '[stack]'), 'rsp is in the stack');
    const xstate = ptrace.getRegset(v.pid, NT.X86_XSTATE);
    assert.ok(xstate.length >= 576, `xstate has the legacy area and header (${xstate.length} bytes)`);

    const mem = readMemory(v.pid, bufAddr, len);
    for (let i = 0; i < len; i += 4093) assert.equal(mem[i], (i * 7 + 3) & 0xff, `pattern byte ${i}`);
    const before = readMemory(v.pid, BigInt(ready[2]!), 8).readBigUInt64LE(0);

    const task = new RemoteTask(v.pid, { site: findSyscallSite(v.pid) });
    assert.equal(task.call(NR.getpid, [], 'getpid'), BigInt(v.pid));
    const addr = task.call(NR.mmap, [0, 8192, 3, 0x22, -1, 0], 'mmap');
    assert.ok(inMapping(v.pid, BigInt.asUintN(64, addr), (p) => p.startsWith('rw')), 'injected mmap created a mapping');
    task.write(BigInt.asUintN(64, addr), Buffer.from('hello'));
    assert.equal(task.read(BigInt.asUintN(64, addr), 5).toString(), 'hello');
    assert.equal(task.call(NR.munmap, [addr, 8192], 'munmap'), 0n);
    assert.ok(!inMapping(v.pid, BigInt.asUintN(64, addr), () => true), 'injected munmap removed it');
    assert.throws(() => task.call(NR.munmap, [1, 4096], 'munmap'), /munmap \(injected\) on pid \d+: EINVAL/);
    task.finish();
    assert.deepEqual(ptrace.getRegs(v.pid), regs, 'registers are back as they were');
    const still = readMemory(v.pid, BigInt(ready[2]!), 8).readBigUInt64LE(0);
    assert.equal(still, before, 'counter did not move while seized');
  } finally {
    proc.release();
  }
  const seen = lastTick(v);
  await v.waitFor(new RegExp(`TICK pid=\\d+ counter=(?!${seen}\\b)\\d+`));
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(lastTick(v) > seen, 'counter keeps rising after release');
});

for (const mode of ['ns', 'pipe', 'poll']) {
  test(`a victim blocked in ${mode === 'ns' ? 'nanosleep' : mode === 'pipe' ? 'read() on a pipe' : 'poll()'} carries on after injection without EINTR`, async () => {
    const v = startVictim('sleeper', { args: [mode] });
    cleanups.push(() => v.cleanup());
    await v.waitFor(/PASS n=2/, 5000);
    for (let i = 0; i < 5; i++) {
      const proc = seizeProcess(v.pid);
      try {
        const task = new RemoteTask(v.pid, { site: findSyscallSite(v.pid) });
        for (let k = 0; k < 10; k++) assert.equal(task.call(NR.getpid, [], 'getpid'), BigInt(v.pid));
        task.scratch(4096);
        task.finish();
      } finally {
        proc.release();
      }
      await new Promise((r) => setTimeout(r, 50 + i * 37));
    }
    await v.waitFor(/PASS n=8/, 8000);
    assert.doesNotMatch(v.output(), /FAIL/);
  });
}

test('seizing a PID that does not exist is a clear error', () => {
  assert.throws(() => seizeProcess(2 ** 22 + 1), { code: 'NO_PROCESS', message: /Cannot seize process \d+: no such process/ });
});

test('seizing a kernel thread is refused', () => {
  assert.throws(() => seizeProcess(2), { code: 'KERNEL_THREAD' });
});

test('batched injected syscalls run together and stop at the first failure, which is reported', async () => {
  const v = startVictim('counter');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/TICK/);
  const comm = () => readFileSync(`/proc/${v.pid}/comm`, 'utf8').trim();
  const proc = seizeProcess(v.pid);
  try {
    const task = new RemoteTask(v.pid, { site: findSyscallSite(v.pid) });
    task.batch(() => {
      task.call(NR.getpid, [], 'getpid');
      task.call(NR.prctl, [15 /* PR_SET_NAME */, task.put(Buffer.from('batched\0'))], 'prctl');
    });
    assert.equal(comm(), 'batched');
    assert.throws(
      () => task.batch(() => {
        task.call(NR.munmap, [1, 4096], 'munmap');
        task.call(NR.prctl, [15, task.put(Buffer.from('never\0'))], 'prctl');
      }),
      /munmap \(injected\) on pid \d+: EINVAL/,
    );
    assert.equal(comm(), 'batched', 'nothing after the failing call ran');
    // More calls than the scratch area's table holds run in parts, and still stop at the first failure.
    const before = task.count;
    assert.throws(
      () => task.batch(() => {
        for (let i = 0; i < 600; i++) task.call(NR.getpid, [], 'getpid');
        task.call(NR.prctl, [15, task.put(Buffer.from('in parts\0'))], 'prctl');
        for (let i = 0; i < 300; i++) task.call(NR.getpid, [], 'getpid');
        task.call(NR.munmap, [1, 4096], 'munmap');
        task.call(NR.prctl, [15, task.put(Buffer.from('never\0'))], 'prctl');
      }),
      /munmap \(injected\) on pid \d+: EINVAL/,
    );
    assert.equal(comm(), 'in parts', 'the parts before the failure ran, the one after did not');
    assert.ok(task.count - before > 900, `the parts ran as batches (${task.count - before} calls counted)`);
    assert.equal(task.call(NR.getpid, [], 'getpid'), BigInt(v.pid), 'single injections work after a batch');
    task.finish();
  } finally {
    proc.release();
  }
  const seen = lastTick(v);
  await v.waitFor(new RegExp(`TICK pid=\\d+ counter=(?!${seen}\\b)\\d+`));
  assert.ok(lastTick(v) >= seen, 'the victim carries on unharmed');
});
