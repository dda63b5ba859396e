/**
 * Signal-driven I/O through the real engine (fd-async.c): a pipe with O_ASYNC, an owner
 * and F_SETSIG to a real-time signal, a socket owned by a process group with SIGIO, and
 * a pipe with an owner but no O_ASYNC. After restore the victim reads them back and gets
 * (or does not get) its signals when data arrives.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, waitGone } from '../helpers/victim.js';

const cleanups = useCleanups();

test('O_ASYNC descriptions keep their owner and signal, and signal again when data arrives', async () => {
  const v = startVictim('fd-async');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-async-img-');
  const d = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(d.warnings, []);
  const logAtDump = statSync(v.log).size;
  await waitGone(v.pid);
  truncateSync(v.log, logAtDump);

  const r = restore({ imagesDir: dir });
  assert.equal(r.pid, v.pid);
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/^DONE$/m);
  const out = v.output();
  assert.doesNotMatch(out, /^FAIL/m, out);
  assert.match(out, /^PASS async$/m, out);
});
