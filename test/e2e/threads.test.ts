import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { show } from '../../src/api/show.js';
import { startVictim, waitGone, type Victim } from '../helpers/victim.js';

const victims: Victim[] = [];
const dirs: string[] = [];
// After each test, not at the end: a victim left running (the thread churner above
// all) would eat through the 32768 PIDs here and take a TID a later test restores.
afterEach(async () => {
  for (const v of victims.splice(0)) await v.cleanup();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const taskIds = (pid: number) => readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);

for (const n of [8, 100]) {
  test(`a process with ${n} threads (TLS counters, masks, names, a mutex/condvar queue, sleepers) survives dump, kill and restore`, async () => {
    const v = startVictim('threads', { args: [String(n)] });
    victims.push(v);
    await v.waitFor(/TICK 2 /, 30_000);
    const tids = taskIds(v.pid);
    assert.equal(tids.length, n + 1);
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-threads-'));
    dirs.push(dir);
    rmSync(dir, { recursive: true });
    dump(v.pid, { imagesDir: dir });
    const threads = show(dir).processes[0]!.core.threads;
    assert.equal(threads.length, n + 1, 'show lists every thread');
    assert.ok(threads.slice(1).every((t) => /^worker-\d+$/.test(t.comm ?? '') && t.resources?.['sigmask']), 'with its name and saved state');
    await waitGone(v.pid);
    const lastTick = Number([...v.output().matchAll(/TICK (\d+) /g)].at(-1)![1]);
    const r = restore({ imagesDir: dir });
    assert.equal(r.pid, v.pid);
    assert.deepEqual(taskIds(v.pid), tids, 'every thread has its old TID');
    // The victim checks its own TIDs, masks, names and queue sequence on every tick.
    await v.waitFor(new RegExp(`TICK ${lastTick + 5} `), 30_000);
    assert.doesNotMatch(v.output(), /FAIL/);
    const queue = [...v.output().matchAll(/TICK \d+ PASS queue=(\d+)/g)].map((m) => Number(m[1]));
    assert.ok(queue.at(-1)! > queue.at(-6)!, 'producers and consumers keep exchanging items after restore');
  });
}

test('python3 with a ThreadPoolExecutor and a threading.Event keeps working after restore', async () => {
  const script = new URL('../victims/py-pool.py', import.meta.url).pathname;
  const v = startVictim('/usr/bin/env', { args: ['python3', script] });
  victims.push(v);
  await v.waitFor(/ROUND 3 /, 30_000);
  const threads = taskIds(v.pid).length;
  assert.ok(threads >= 5, `python runs its pool threads (${threads})`);
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-pypool-'));
  dirs.push(dir);
  rmSync(dir, { recursive: true });
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const last = Number([...v.output().matchAll(/ROUND (\d+) /g)].at(-1)![1]);
  restore({ imagesDir: dir });
  await v.waitFor(new RegExp(`ROUND ${last + 5} `), 30_000);
  assert.doesNotMatch(v.output(), /FAIL/);
});

test('a process that creates and joins threads without pause is dumped consistently (twice leaving it running) and carries on after restore', async () => {
  const v = startVictim('churn');
  victims.push(v);
  await v.waitFor(/TICK 3 /, 30_000);
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-churn-'));
  dirs.push(dir);
  for (let i = 0; i < 3; i++) {
    rmSync(dir, { recursive: true, force: true });
    dump(v.pid, { imagesDir: dir, leaveRunning: i < 2 });
  }
  await waitGone(v.pid);
  const last = Number([...v.output().matchAll(/TICK (\d+) /g)].at(-1)![1]);
  restore({ imagesDir: dir });
  await v.waitFor(new RegExp(`TICK ${last + 5} `), 30_000);
  assert.doesNotMatch(v.output(), /FAIL/);
});

test('1000 threads dump and restore with their TIDs', async () => {
  const v = startVictim('threads', { args: ['1000'] });
  victims.push(v);
  await v.waitFor(/TICK 2 /, 60_000);
  const tids = taskIds(v.pid);
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-1000-'));
  dirs.push(dir);
  rmSync(dir, { recursive: true });
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const last = Number([...v.output().matchAll(/TICK (\d+) /g)].at(-1)![1]);
  restore({ imagesDir: dir });
  assert.deepEqual(taskIds(v.pid), tids);
  await v.waitFor(new RegExp(`TICK ${last + 3} `), 60_000);
  assert.doesNotMatch(v.output(), /FAIL/);
});

test('a thread TID taken at restore time is a clear error and nothing is left', async () => {
  const v = startVictim('threads', { args: ['4'] });
  victims.push(v);
  await v.waitFor(/TICK 1 /, 30_000);
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-tidtaken-'));
  dirs.push(dir);
  rmSync(dir, { recursive: true });
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const thread = Number(v.output().match(/tids=(\d+),(\d+)/)![2]);
  const holder = startVictim('pidhold', { args: [String(thread)] });
  victims.push(holder);
  await holder.waitFor(/HOLD|FAIL/);
  assert.match(holder.output(), new RegExp(`HOLD ${thread}`), 'a process now holds the thread\'s TID');
  try {
    assert.throws(() => restore({ imagesDir: dir }), { code: 'PID_TAKEN', message: new RegExp(`thread ${thread} of process ${v.pid}: PID ${thread} is in use`) });
    assert.ok(!existsSync(`/proc/${v.pid}`), 'no half-built process is left');
  } finally {
    process.kill(thread, 'SIGKILL');
    await waitGone(thread);
  }
});
