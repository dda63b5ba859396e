/**
 * Copy-on-write sharing after fork at dump (shm-cow.c): with the parent given, the
 * child's dump leaves out the 7 MiB it still shares with its parent and keeps the
 * 1 MiB it rewrote; its area is marked inherited. After a full dump and restore the
 * two share those pages again, and each finds its own contents.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { findSyscallSite, RemoteTask, seizeProcess } from '../../src/infect/index.js';
import { ImageWriter } from '../../src/images/index.js';
import { readPagemap } from '../../src/proc/index.js';
import { dumpMemory } from '../../src/resources/memory/dump.js';
import type { DumpContext } from '../../src/resources/types.js';
import { startVictim, waitGone, type Victim, killAll } from '../helpers/victim.js';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
// One step for the victims: the last child seen and every shm-cow are killed before any victim's cleanup.
const victims: Victim[] = [];
let child = 0;
cleanups.push(async () => {
  killAll('shm-cow');

  if (child) process.kill(child, 'SIGKILL');
  for (const v of victims) await v.cleanup();
});

function dumpOne(pid: number, w: ImageWriter, parent?: NonNullable<Parameters<typeof dumpMemory>[2]>['parent']) {
  const proc = seizeProcess(pid);
  try {
    const remote = new RemoteTask(pid, { site: findSyscallSite(pid) });
    const ctx: DumpContext = { pid, proc, remote, blobs: { put: (n) => n }, warn: () => {} };
    const pw = w.pages(pid, { checksum: false });
    const r = dumpMemory(ctx, pw, { parent });
    pw.close();
    remote.finish();
    return { r, proc };
  } catch (e) {
    proc.release();
    throw e;
  }
}

/** Pages of the 8 MiB area that parent and child map from one physical page. */
function sharedPages(a: number, b: number, area: bigint): number {
  const pa = readPagemap(a, area, area + (8n << 20n));
  const pb = readPagemap(b, area, area + (8n << 20n));
  let k = 0;
  for (let i = 0; i < pa.length; i += 8) {
    if (pa.readUInt32LE(i + 4) >>> 31 && pa.readUInt32LE(i) === pb.readUInt32LE(i) && pa.readUInt32LE(i + 4) === pb.readUInt32LE(i + 4)) k++;
  }
  return k;
}

// Pages that may be shared are read through /proc/PID/mem: process_vm_readv (a
// read-only pin) would make the kernel unshare them before the child is compared.
test('a child dumped with its parent leaves out the pages it still shares copy-on-write', async () => {
  const v = startVictim('shm-cow');
  victims.push(v);
  const m = await v.waitFor(/READY pid=\d+ child=(\d+) area=0x([0-9a-f]+)/);
  child = Number(m[1]);
  const area = BigInt(`0x${m[2]}`);
  assert.ok(sharedPages(v.pid, child, area) >= 7 * 256, 'the victim shares 7 MiB copy-on-write before the dump');
  const dir = cleanups.tempDir('ckpt-cow-');
  const w = ImageWriter.create(dir);
  const parent = dumpOne(v.pid, w);
  try {
    const kid = dumpOne(child, w, { pid: v.pid, state: parent.r.state });
    kid.proc.release();
    const vma = kid.r.state.vmas.find((x) => x.start === area);
    assert.ok(vma?.inherited, 'the 8 MiB area is marked inherited');
    const shared = kid.r.stats.sharedWithParent ?? 0;
    assert.ok(shared >= 7 * 256, `at least 7 MiB left out (got ${shared} pages)`);
    assert.ok(kid.r.stats.pages >= 256, 'the rewritten 1 MiB is saved');
    assert.ok(kid.r.stats.pages < parent.r.stats.pages - 7 * 256 + 256, 'the child saves much less than the parent');
  } finally {
    parent.proc.release();
    w.abort();
  }
});

test('after dump and restore, parent and child share their unchanged pages again and each has its own contents', async () => {
  const v = startVictim('shm-cow');
  victims.push(v);
  const m = await v.waitFor(/READY pid=\d+ child=(\d+) area=0x([0-9a-f]+)/);
  const kid = Number(m[1]);
  const area = BigInt(`0x${m[2]}`);
  await v.waitFor(/CHILD pid=/);
  const dir = cleanups.tempDir('ckpt-cow2-');
  rmSync(dir, { recursive: true });
  const d = dump(v.pid, { imagesDir: dir });
  assert.ok(d.pages < 2 * 2048, `the child's shared pages are not saved twice (${d.pages} pages)`);
  await waitGone(v.pid);
  await waitGone(kid);
  restore({ imagesDir: dir });
  child = kid;
  const shared = sharedPages(v.pid, kid, area);
  assert.ok(shared >= 7 * 256, `parent and child share at least 7 MiB again (${shared} pages)`);
  process.kill(v.pid, 'SIGUSR1');
  process.kill(kid, 'SIGUSR1');
  await v.waitFor(/PASS parent[\s\S]*PASS child|PASS child[\s\S]*PASS parent/);
  assert.doesNotMatch(v.output(), /FAIL/);
});
