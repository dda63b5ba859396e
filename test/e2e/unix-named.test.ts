/**
 * Named and abstract unix sockets across a parent and child (unix-named.c checks
 * itself): listeners (stream, seqpacket) with accepted connections and connections not
 * accepted yet, datagrams queued from several senders (each keeps its sender's name),
 * a one-way connected datagram socket, socket files with their mode, unlinked or renamed
 * after bind, a stream whose peer wrote and closed. A stale socket file left by the killed tree is replaced; another file at
 * a name to bind refuses the restore and leaves nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { startVictim, waitGone, killQuietly } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { restoreAndVerify } from '../helpers/selfcheck.js';

const cleanups = useCleanups();

async function dumped() {
  const v = startVictim('unix-named');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ child=(\d+)/);
  const child = Number(m[1]);
  cleanups.push(() => killQuietly([v.pid, child]));
  const dir = cleanups.tempDir('ckpt-unix-named-img-');
  const r = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(r.warnings, []);
  await waitGone(v.pid);
  await waitGone(child);
  return { v, dir };
}

test('named, abstract, listening and datagram unix sockets are all there after restore', async () => {
  const { v, dir } = await dumped();
  // The killed tree left its socket files: stale, and replaced.
  assert.ok(statSync(join(v.dir, 'listen.sock')).isSocket());
  await restoreAndVerify(v, { imagesDir: dir, expect: /PASS a new connection to the listener/ });
});

test('a name taken by another file refuses the restore, which leaves nothing behind', async () => {
  const { v, dir } = await dumped();
  rmSync(join(v.dir, 'recv.sock'));
  writeFileSync(join(v.dir, 'recv.sock'), 'not a socket');
  assert.throws(() => restore({ imagesDir: dir }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'ADDRESS_IN_USE', e.message);
    assert.match(e.message, /recv\.sock exists and is not the stale file of this socket/);
    return true;
  });
  await waitGone(v.pid, 5000);
  // The stale files removed before the failure are not put back; none of ours is left.
  assert.ok(!existsSync(join(v.dir, 'gone.sock')));
});
