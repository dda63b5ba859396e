/**
 * Incremental dumps (predump.c): memory tracking reports exactly the pages the victim
 * wrote; two pre-dumps and a final dump against them save less and less, and the
 * restored victim finds all its memory (rewritten pages, pages dropped with
 * MADV_DONTNEED, an area mapped again, an mremapped one, a new one); a chain whose
 * parent is missing or another set is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, renameSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { preDump } from '../../src/dump/predump.js';
import { restore } from '../../src/restore/restore.js';
import { show } from '../../src/api/show.js';
import { seizeProcess, findSyscallSite, RemoteTask } from '../../src/infect/index.js';
import { MemoryTracking, scanWritten } from '../../src/resources/memory/track.js';
import { openPagemap } from '../../src/proc/index.js';
import { closeSync } from 'node:fs';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const PAGE = 4096n;

async function start(): Promise<{ v: Victim; a: bigint }> {
  const v = startVictim('predump');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ A=(0x[0-9a-f]+)/);
  return { v, a: BigInt(m[1]!) };
}

async function nextRound(v: Victim, n: number): Promise<void> {
  kill(v.pid, SIG.SIGUSR2);
  await v.waitFor(new RegExp(`ROUND ${n}`));
}

test('the written set is exactly the pages the victim wrote since tracking was armed', async () => {
  const { v, a } = await start();
  const tracking = new MemoryTracking();
  const area = { start: a, end: a + 4096n * PAGE };
  let proc = seizeProcess(v.pid);
  try {
    const remote = new RemoteTask(v.pid, { site: findSyscallSite(v.pid) });
    const t = tracking.forProcess(v.pid, () => remote);
    t.arm([{ ...area, registered: false }]);
    t.close();
    remote.finish();
  } finally {
    proc.release();
  }
  await nextRound(v, 1);
  proc = seizeProcess(v.pid);
  const fd = openPagemap(v.pid);
  try {
    const written = scanWritten(fd, area);
    const want = Array.from({ length: 512 }, (_, k) => ({ start: a + BigInt(k * 8 + 1) * PAGE, end: a + BigInt(k * 8 + 2) * PAGE }));
    assert.deepEqual(written, want);
    // Scanning re-armed it: nothing written since.
    assert.deepEqual(scanWritten(fd, area), []);
  } finally {
    closeSync(fd);
    proc.release();
    tracking.release();
  }
});

test('two pre-dumps and a dump against them restore a victim whose memory kept changing; a missing or other parent is refused', async () => {
  const { v } = await start();
  const d1 = cleanups.tempDir('ckpt-pre1-');
  const d2 = cleanups.tempDir('ckpt-pre2-');
  const d3 = cleanups.tempDir('ckpt-final-');
  const p1 = preDump(v.pid, { imagesDir: d1 });
  assert.ok(p1.pages >= 4096 + 2 * 256 + 1, `first pre-dump: ${p1.pages} pages`);
  assert.equal(p1.inParent, 0);
  await nextRound(v, 1);
  const p2 = preDump(v.pid, { imagesDir: d2, parent: path.relative(d2, d1) });
  // Rewritten: 512 pages of A, B mapped again (256), the hot page, some stack and libc data.
  assert.ok(p2.pages >= 512 + 256 && p2.pages < 512 + 256 + 200, `second pre-dump: ${p2.pages} pages`);
  assert.ok(p2.inParent >= 4096 - 512, `second pre-dump: ${p2.inParent} pages in the parent`);
  await nextRound(v, 2);
  const r = dump(v.pid, { imagesDir: d3, parent: path.relative(d3, d2) });
  await waitGone(v.pid);
  const s = show(d3);
  assert.equal(s.parent?.dir, path.relative(d3, d2));
  const pm = s.processes[0]!.pagemap;
  // 512 of A, C moved (256), D new (256), and the little the program touched.
  assert.ok(pm.pages >= 512 + 2 * 256 && pm.pages < 512 + 2 * 256 + 200, `final dump: ${pm.pages} pages`);
  assert.ok(pm.pages < p1.pages / 3, `final dump ${pm.pages} pages against ${p1.pages} at first`);
  assert.equal(pm.inParent, r.inParent);
  // A: 4096 - 512 rewritten - 64 dropped.
  assert.ok(pm.fromParents >= 4096 - 512 - 64 && pm.fromParents <= pm.inParent, `final dump: ${pm.inParent} in the parents, ${pm.fromParents} held there`);

  renameSync(d2, `${d2}.away`);
  assert.throws(() => restore({ imagesDir: d3 }), { code: 'BAD_IMAGE', message: /parent images .* are missing/ });
  cpSync(d1, d2, { recursive: true });
  assert.throws(() => restore({ imagesDir: d3 }), { code: 'BAD_IMAGE', message: /not the ones it was dumped against/ });
  rmSync(d2, { recursive: true });
  renameSync(`${d2}.away`, d2);

  const rr = restore({ imagesDir: d3 });
  const rv = wrapPid(rr.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  kill(rr.pid, SIG.SIGUSR1);
  await rv.waitFor(/DONE fails=\d+/);
  const out = rv.output();
  assert.doesNotMatch(out, /FAIL/, out);
  assert.equal([...out.matchAll(/^PASS /gm)].length, 6, out);
});

test('a dump against a pre-dump whose tracking is gone is refused and leaves the victim running', async () => {
  const { v } = await start();
  const d1 = cleanups.tempDir('ckpt-pre1-');
  const d2 = cleanups.tempDir('ckpt-pre2-');
  const d3 = cleanups.tempDir('ckpt-final-');
  preDump(v.pid, { imagesDir: d1 });
  preDump(v.pid, { imagesDir: d2, parent: d1 });
  // The second round took the tracking over: the first one's is spent.
  assert.throws(() => dump(v.pid, { imagesDir: d3, parent: d1 }), { code: 'USAGE', message: /memory tracking is gone/ });
  assert.ok(v.alive());
  await nextRound(v, 1);
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  assert.doesNotMatch(v.output(), /FAIL/);
});
