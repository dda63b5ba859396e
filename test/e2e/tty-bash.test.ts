/**
 * A real program on a pty of the tree (pty-bash.py): python3 holds the master, an
 * interactive bash runs on the slave with a background job and `cat` in the
 * foreground. After dump and restore python checks the session itself: typed lines
 * reach cat, Ctrl-C interrupts it and bash prompts again, its job table is intact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, killQuietly } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { readFileSync } from 'node:fs';

const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p));
const SCRIPT = new URL('../victims/pty-bash.py', import.meta.url).pathname;
const cleanups = useCleanups();

/** Every process under `pid` (the tree the dump takes). */
function treeOf(pid: number): number[] {
  const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return [pid, ...kids.flatMap(treeOf)];
}

test('an interactive bash on a pty of the tree, with jobs, works after restore', { timeout: 60_000, skip: PYTHON ? false : 'no python3' }, async () => {
  const v = startVictim(PYTHON!, { args: [SCRIPT] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+ bash=\d+/, 20_000);
  const pids = treeOf(v.pid);
  cleanups.push(() => killQuietly(pids));
  assert.ok(pids.length >= 4, `python, bash, sleep and cat: ${pids.join(' ')}`);

  const dir = cleanups.tempDir('ckpt-tty-bash-img-');
  dump(v.pid, { imagesDir: dir });
  for (const pid of pids) await waitGone(pid);
  const mark = v.output().length;
  restore({ imagesDir: dir });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/, 30_000).catch(() => undefined);
  const out = v.output().slice(mark);
  assert.doesNotMatch(out, /FAIL/, out);
  assert.match(out, /^DONE fails=0$/m, out);
});
