/**
 * Shared memory of one process through dump and restore (shm-single.c): an anonymous
 * shared area mapped at an offset of its object, a sealed memfd (fd and mapping the
 * same object), a /dev/shm file mapping and a SysV segment. The victim checks its areas
 * and their sharing every tick; after restore it must keep ticking "ok".
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, rmSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const tempDir = (prefix: string) => cleanups.tempDir(prefix);

const ticks = (text: string) => [...text.matchAll(/^TICK (\d+) ok$/gm)].map((m) => Number(m[1]));

async function moreTicks(v: Victim, base: number, n: number): Promise<void> {
  const deadline = Date.now() + 10000;
  for (;;) {
    const out = v.output();
    assert.doesNotMatch(out, /FAIL/, 'the victim found no fault');
    if (ticks(out).length >= base + n) return;
    if (Date.now() > deadline) throw new Error(`no ${n} new ticks; output:\n${out.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function maps(pid: number): string[] {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').filter((l) => / (\/dev\/zero|\/memfd:|\/SYSV|\/dev\/shm\/)/.test(l));
}

/** "start-end perms offset path" of the shared areas, without device and inode. */
const shape = (lines: string[]) => lines.map((l) => {
  const f = l.split(/\s+/);
  return `${f[0]} ${f[1]} ${f[2]} ${f.slice(5).join(' ')}`;
});

async function roundTrip(t: TestContext, opts: { keepFd: boolean }): Promise<void> {
  const v = startVictim('shm-single', { args: opts.keepFd ? [] : ['nofd'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  cleanups.push(() => rmSync(`/dev/shm/ckpt-shm-${v.pid}`, { force: true }));
  await moreTicks(v, 0, 3);
  const before = shape(maps(v.pid));
  assert.equal(before.length, 4, `four shared areas: ${before.join('\n')}`);
  const dir = tempDir('ckpt-shm-img-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const n = ticks(v.output()).length;

  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(r.pid, v.pid);
  await moreTicks(rv, n, 5);
  assert.ok(rv.alive());
  const all = ticks(rv.output());
  for (let i = 1; i < all.length; i++) assert.equal(all[i], all[i - 1]! + 1, 'ticks continue one by one');
  assert.deepEqual(shape(maps(r.pid)), before, 'same shared areas at the same places');
  if (opts.keepFd) assert.equal(readlinkSync(`/proc/${r.pid}/fd/3`), '/memfd:ckpt-shm (deleted)');
  // The segment was IPC_RMID'ed before the dump: it is again after the restore.
  const sysv = readFileSync('/proc/sysvipc/shm', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f[4] === String(r.pid) || f[5] === String(r.pid));
  for (const f of sysv) assert.equal(parseInt(f[2]!, 8) & 0o1000, 0o1000, 'segment still marked for removal');
}

test('anonymous shared, memfd (mapping only), /dev/shm and SysV memory survive dump and restore', (t) => roundTrip(t, { keepFd: false }));

test('a memfd fd and its mapping are still one object after restore', (t) => roundTrip(t, { keepFd: true }));
