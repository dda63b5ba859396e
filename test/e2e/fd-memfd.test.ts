/**
 * memfd attributes through the real engine (fd-memfd.c): a memfd's mode (fchmod),
 * owner, name, size, content and seals, and a MFD_NOEXEC_SEAL memfd, checked by the
 * victim itself after restore.
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

test('a memfd keeps its mode, owner, name, size and seals', async () => {
  const v = startVictim('fd-memfd');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-memfd-img-');
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
  assert.match(out, /^PASS memfd$/m, out);
});
