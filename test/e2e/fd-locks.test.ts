/**
 * File locks through the real engine (fd-locks.c): a parent holds a flock, POSIX read
 * and write locks through two descriptions of one file, an OFD lock and a read lease;
 * its child holds a POSIX lock and waits in F_SETLKW for one of the parent's. After
 * restore a probe process finds every lock held by its owner, and the waiter gets its
 * lock only when the parent releases it. A lease being broken is refused at dump.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants, openSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { killQuietly, startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();

test('flock, POSIX, OFD locks and a lease come back held by their owners; a waiter waits again', async () => {
  const v = startVictim('fd-locks');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ child=(\d+)/);
  const child = Number(m[1]);
  cleanups.push(() => killQuietly([v.pid, child]));
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-locks-img-'), pass: ['probe', 'waiter', 'locks'], alsoGone: [child] });
});

test('a lease being broken is refused at dump, naming it, and the process runs on', async () => {
  const v = startVictim('fd-locks', { args: ['breaking'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  // A non-blocking open for reading starts breaking the write lease and fails with EWOULDBLOCK.
  assert.throws(() => closeSync(openSync(join(v.dir, 'lease.dat'), constants.O_RDONLY | constants.O_NONBLOCK)), /EWOULDBLOCK|EAGAIN/);
  const dir = cleanups.tempDir('ckpt-locks-img-');
  assert.throws(() => dump(v.pid, { imagesDir: dir }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`^Cannot dump fd 3 of process ${v.pid}: it holds a LEASE BREAKING \\w+ lock on bytes 0-EOF, which cannot be restored`),
  });
  assert.ok(v.alive());
});
