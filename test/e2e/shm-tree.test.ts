/**
 * Memory shared between a parent and its child (shm-tree.c) through dump and restore:
 * an anonymous shared page, a memfd mapping and a SysV segment must each be ONE object
 * again (same inode in both processes' maps) and each process must keep seeing the
 * other's counters move (the victim fails when they freeze).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { startVictim, waitGone, type Victim, killQuietly } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

const ticks = (text: string, role: string) => [...text.matchAll(new RegExp(`^TICK ${role} (\\d+) other=(\\d+) ok$`, 'gm'))].map((m) => ({ n: Number(m[1]), other: Number(m[2]) }));

/** "path inode" of the shared memory areas of pid. */
function sharedObjects(pid: number): string[] {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')
    .filter((l) => / (\/dev\/zero|\/memfd:|\/SYSV)/.test(l))
    .map((l) => { const f = l.split(/\s+/); return `${f.slice(5).join(' ')} ${f[4]}`; })
    .sort();
}

async function until(v: Victim, ok: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10000;
  while (!ok()) {
    assert.doesNotMatch(v.output(), /FAIL/);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${v.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a parent and child keep sharing anonymous, memfd and SysV memory after dump and restore', async () => {
  const v = startVictim('shm-tree');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ child=(\d+)/);
  const child = Number(m[1]);
  cleanups.push(() => killQuietly([v.pid, child])); // before the victim's cleanup
  await until(v, () => ticks(v.output(), 'child').length >= 5 && ticks(v.output(), 'parent').length >= 5, 'ticks before the dump');
  const before = { parent: sharedObjects(v.pid), child: sharedObjects(child) };
  assert.equal(before.parent.length, 3);
  assert.deepEqual(before.child, before.parent, 'one object each, mapped by both');

  const dir = cleanups.tempDir('ckpt-shm-tree-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  await waitGone(child);
  const mark = v.output().length;
  restore({ imagesDir: dir });
  const after = () => v.output().slice(mark);
  await until(v, () => ticks(after(), 'child').length >= 50 && ticks(after(), 'parent').length >= 50, '50 ticks of each after restore');
  assert.doesNotMatch(after(), /FAIL/);
  const p = ticks(after(), 'parent');
  const c = ticks(after(), 'child');
  assert.ok(p[p.length - 1]!.other > p[0]!.other + 20, 'the parent sees the child count on');
  assert.ok(c[c.length - 1]!.other > c[0]!.other + 20, 'the child sees the parent count on');
  const now = { parent: sharedObjects(v.pid), child: sharedObjects(child) };
  assert.deepEqual(now.child, now.parent, 'still one object each, mapped by both');
});
