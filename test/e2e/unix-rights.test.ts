/**
 * Files in flight in unix messages (SCM_RIGHTS; unix-rights.c checks itself): a regular
 * file sharing its offset with the sender's fd, a pipe with bytes in it, a socket the
 * sender holds too, an eventfd in a stream between plain bytes. Each is saved as what it
 * is and sent again at restore, so the receiver's recvmsg gets it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('files passed in queued unix messages arrive after restore', async () => {
  const v = startVictim('unix-rights');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-unix-rights-img-');
  const r = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(r.warnings, []);
  await waitGone(v.pid);
  const mark = v.output().length;
  restore({ imagesDir: dir });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/, 10000);
  const out = v.output().slice(mark);
  assert.doesNotMatch(out, /FAIL/, out);
  assert.match(out, /DONE fails=0/, out);
});
