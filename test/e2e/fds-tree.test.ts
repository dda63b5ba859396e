/**
 * A parent and child (fd-pipes2.c) joined by pipes and a socketpair with data in
 * flight both ways, and sharing one file offset: after a tree dump and restore each
 * pipe and socket is one object again, and a write by the child moves the offset the
 * parent sees (one open file description, not two copies).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, killQuietly } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const tempDir = (prefix: string) => cleanups.tempDir(prefix);

const links = (pid: number, fds: number[]) => fds.map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`));

test('a parent and child keep their pipes, socketpair, data in flight and shared offset', async () => {
  const v = startVictim('fd-pipes2', { args: [tempDir('ckpt-fds-tree-')] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ child=(\d+)/);
  const child = Number(m[1]);
  cleanups.push(() => killQuietly([v.pid, child])); // before the victim's cleanup
  // parent: 3 file, 5 down[1], 6 up[0], 8 sp[0]; child: 3 file, 4 down[0], 7 up[1], 9 sp[1]
  const before = { parent: links(v.pid, [3, 5, 6, 8]), child: links(child, [3, 4, 7, 9]) };

  const dir = tempDir('ckpt-fds-tree-img-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  await waitGone(child);
  const mark = v.output().length;
  restore({ imagesDir: dir });
  const now = { parent: links(v.pid, [3, 5, 6, 8]), child: links(child, [3, 4, 7, 9]) };
  // Same objects on both sides: the pipe seen by the parent's write end is the child's read end, etc.
  assert.equal(now.parent[0], before.parent[0], 'the file');
  assert.equal(now.parent[0], now.child[0]);
  assert.equal(now.parent[1], now.child[1], 'down pipe: one object');
  assert.equal(now.parent[2], now.child[2], 'up pipe: one object');
  assert.match(now.parent[3]!, /^socket:/);
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/CHECK .*\n/, 10000).catch(() => undefined);
  const out = v.output().slice(mark);
  assert.match(out, /^CHECK PASS$/m, out);
});
