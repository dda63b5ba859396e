/**
 * Peer credentials of restored unix sockets (unix-cred.c checks itself): a socketpair's
 * ends name its maker, a listener and its clients the listener at listen() time, an
 * accepted connection its client at connect() time, including a child that changed its
 * uid after connecting and one that made its pair as uid 1000 with groups: SO_PEERCRED,
 * SO_PEERGROUPS and SO_PEERPIDFD give the same after restore. A socket whose credentials
 * name a process outside the dump is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { kill } from '../../src/sys/index.js';
import { startVictim, waitGone, killQuietly } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { restoreAndVerify } from '../helpers/selfcheck.js';

const cleanups = useCleanups();

test('SO_PEERCRED, SO_PEERGROUPS and SO_PEERPIDFD name the same processes and ids after restore', async () => {
  const v = startVictim('unix-cred');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ child=(\d+) child2=(\d+)/);
  const kids = [Number(m[1]), Number(m[2])];
  cleanups.push(() => killQuietly([v.pid, ...kids]));
  const dir = cleanups.tempDir('ckpt-unix-cred-img-');
  const r = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(r.warnings, []);
  await waitGone(v.pid);
  for (const k of kids) await waitGone(k);
  await restoreAndVerify(v, { imagesDir: dir, expect: /PASS child 2: SO_PEERPIDFD of its own datagram socketpair/ });
});

test('a socket whose peer credentials name a process outside the dump is refused, naming the fd', async () => {
  const v = startVictim('unix-cred', { args: ['outside'] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=(\d+) child=(\d+)/);
  const child = Number(m[2]);
  cleanups.push(() => killQuietly([v.pid, child]));
  const dir = cleanups.tempDir('ckpt-unix-cred-img-');
  assert.throws(() => dump(child, { imagesDir: dir }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'UNSUPPORTED', e.message);
    assert.match(e.message, new RegExp(`Cannot dump fd \\d+ of process ${child}: its peer credentials \\(SO_PEERCRED\\) name process ${v.pid}, which is not in the dump`));
    return true;
  });
  // The failed dump left the child running.
  kill(child, 0);
});
