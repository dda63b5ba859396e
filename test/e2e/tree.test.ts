import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { show } from '../../src/api/show.js';
import { findSharing } from '../../src/resources/sharing/index.js';
import { startVictim, waitGone, type Victim, killAll, killQuietly } from '../helpers/victim.js';

const victims: Victim[] = [];
const pids: number[] = [];
// After each test: the forker would otherwise eat PIDs that a later test restores.
afterEach(async () => {
  killAll('tree');
  killAll('forker');
  killQuietly(pids.splice(0));
  for (const v of victims.splice(0)) await v.cleanup();
});

const state = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]![0];
/** What is shared, by pid and fd only (paths of deleted files may differ in suffix). */
const sharingOf = (ps: number[]) => {
  const r = findSharing(ps);
  return { groups: r.groups, files: r.files.map((f) => f.fds.filter((x) => x.fd >= 3)).filter((f) => f.length > 1) };
};

test('a tree of 10 processes (3 levels, 2 sessions, 3 groups, a zombie, a stopped child, shared offset, CLONE_FILES, a shared counter page, a memfd, a SysV segment, queued datagrams) survives dump and restore', async () => {
  const v = startVictim('tree');
  victims.push(v);
  await v.waitFor(/READY/);
  await v.waitFor(/STOPPING B3/);
  const procs = [...v.output().matchAll(/PROC (\S+) (\d+) (\d+) (\d+) (\d+)/g)].map((m) => ({ name: m[1]!, pid: Number(m[2]) }));
  pids.push(...procs.map((p) => p.pid));
  assert.equal(procs.length, 9, 'nine live processes and a zombie');
  const b3 = procs.find((p) => p.name === 'B3')!.pid;
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(state(b3), 'T');
  const before = sharingOf(procs.map((p) => p.pid));

  const dir = join(tmpdir(), `ckpt-tree-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  const d = dump(v.pid, { imagesDir: dir });
  assert.equal(d.processes, 10);
  const shown = show(dir);
  assert.equal(shown.process.tree.length, 10);
  assert.equal(shown.processes.length, 9, 'show decodes the nine live processes');
  assert.equal(shown.process.tree.filter((e) => e.zombie?.status === 42 << 8).length, 1, 'and lists the zombie with its status');
  for (const p of procs) await waitGone(p.pid);
  await waitGone(Number(v.output().match(/ZOMBIE (\d+)/)![1]));
  const mark = v.output().length;
  const r = restore({ imagesDir: dir });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(r.processes, 10);
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(state(b3), 'T', 'the stopped child is stopped again');
  assert.deepEqual(sharingOf(procs.map((p) => p.pid)), before, 'kcmp finds the same sharing after restore');

  for (const p of procs) process.kill(p.pid, 'SIGUSR1');
  process.kill(b3, 'SIGCONT');
  const out = () => v.output().slice(mark);
  // Every process reports DONE after its checks; R last, after the shared counter.
  for (const p of procs) await v.waitFor(new RegExp(`DONE ${p.name}\\b`), 30_000);
  const text = out();
  assert.doesNotMatch(text, /FAIL/);
  for (const p of procs) assert.match(text, new RegExp(`PASS ${p.name} ids`), `${p.name} has its pid, ppid, pgid and sid`);
  assert.match(text, /PASS R zombie/);
  assert.match(text, /PASS R shared table/);
  assert.match(text, /PASS R shared offset/);
  assert.match(text, /PASS B3 continued/);
  for (const p of procs) assert.match(text, new RegExp(`PASS ${p.name} shared memory`), `${p.name} sees the memfd and the SysV segment`);
  assert.match(text, /PASS A datagrams/);
  assert.match(text, /PASS R shared counter/);
});

test('a process forking and reaping children without pause is dumped consistently and carries on after restore', async () => {
  const v = startVictim('forker');
  victims.push(v);
  await v.waitFor(/TICK PASS/);
  const dir = join(tmpdir(), `ckpt-forker-${process.pid}`);
  let dumped: number[] = [];
  for (let i = 0; i < 4; i++) {
    rmSync(dir, { recursive: true, force: true });
    dumped = dump(v.pid, { imagesDir: dir, leaveRunning: i < 3 }).pids;
  }
  // A child caught mid-life (alive or a zombie) is part of the tree and dies with it.
  for (const p of dumped) await waitGone(p);
  const mark = v.output().length;
  restore({ imagesDir: dir });
  rmSync(dir, { recursive: true, force: true });
  const ticks = () => [...v.output().slice(mark).matchAll(/TICK (\w+) reaped=(\d+)/g)];
  for (let i = 0; i < 500 && ticks().length < 3; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(ticks().length >= 3, 'it keeps forking after restore');
  assert.doesNotMatch(v.output(), /FAIL/);
});

test('restoring a tree while one of its PIDs is in use fails before anything is built', async () => {
  const v = startVictim('tree');
  victims.push(v);
  await v.waitFor(/STOPPING B3/);
  const procs = [...v.output().matchAll(/PROC (\S+) (\d+)/g)].map((m) => Number(m[2]));
  pids.push(...procs);
  const dir = join(tmpdir(), `ckpt-tree-taken-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  dump(v.pid, { imagesDir: dir, leaveRunning: true });
  try {
    assert.throws(() => restore({ imagesDir: dir }), { code: 'PID_TAKEN', message: new RegExp(`Cannot restore process ${v.pid}: PID ${v.pid} is in use`) });
    for (const p of procs) assert.notEqual(state(p), 'Z', `process ${p} of the original runs on`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
