/**
 * A SIGTRAP handler (vim has one) survives a leave-running dump and a restore. ckpt's
 * batched injections stop on int3 with every signal blocked, and the kernel resets the
 * disposition of a blocked SIGTRAP it forces to SIG_DFL: such a process must get its
 * calls one by one. The victim checks its handler and raises SIGTRAP itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('a SIGTRAP handler is kept by a leave-running dump and by restore', async () => {
  const v = startVictim('sigtrap');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-sigtrap-img-');
  dump(v.pid, { imagesDir: dir, leaveRunning: true });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/^CHECK 1 /m);
  await v.kill();
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  kill(r.pid, SIG.SIGUSR1);
  await rv.waitFor(/^CHECK 1 .*\n[^]*^CHECK 1 /m);
  const lines = v.output().split('\n').filter((l) => l.startsWith('CHECK'));
  assert.deepEqual(lines, ['CHECK 1 PASS', 'CHECK 1 PASS'], v.output());
});
