/**
 * A pty pair inside the tree (pty-tree.c): the parent holds the master, a child leads a
 * session on the slave, a grandchild is the foreground group and holds /dev/tty. After
 * dump and restore every process checks its terminal itself: the same index, termios,
 * window size, packet mode, lock, exclusive mode, controlling terminal and foreground
 * group, and the bytes that were queued both ways.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, killQuietly } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('a pty pair held by the tree comes back with its state and queued data', async () => {
  const v = startVictim('pty-tree');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ child=(\d+) pty=(\d+)/);
  const g = await v.waitFor(/CHILD grandchild=(\d+)/);
  await v.waitFor(/GRANDCHILD ready/);
  const pids = [v.pid, Number(m[1]), Number(g[1])];
  cleanups.push(() => killQuietly(pids));

  const dir = cleanups.tempDir('ckpt-tty-img-');
  dump(v.pid, { imagesDir: dir });
  for (const pid of pids) await waitGone(pid);
  const mark = v.output().length;
  restore({ imagesDir: dir });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE parent/, 10000).catch(() => undefined);
  const out = v.output().slice(mark);
  assert.doesNotMatch(out, /FAIL/, out);
  for (const who of ['parent', 'child', 'grandchild']) assert.match(out, new RegExp(`^DONE ${who} fails=0$`, 'm'), out);
});
