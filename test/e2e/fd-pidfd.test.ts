/**
 * pidfds through the real engine (fd-pidfd.c): of a live child (non-blocking), of a
 * zombie child, of a thread (PIDFD_THREAD), of the process itself, and a child's pidfd
 * of its parent. After restore the victim checks each names the same process and
 * behaves as one (waitid on the zombie's gets its status; signals go through). A pidfd
 * of a process outside the tree, or of a reaped one, is refused and the target runs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { killQuietly, startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = ['pidfd-self', 'pidfd-thread', 'pidfd-child-alive', 'pidfd-zombie', 'pidfd-of-parent', 'pidfd-child-kill'];

test('pidfds of processes and threads of the tree, alive or zombie, survive dump and restore', async () => {
  const v = startVictim('fd-pidfd');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ child=(\d+) zombie=(\d+)/);
  await v.waitFor(/CHILD pidfd=\d+/);
  const child = Number(m[1]);
  cleanups.push(() => killQuietly([child]));
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-pidfd-img-'), pass: CHECKS, alsoGone: [child, Number(m[2])] });
});

test('a pidfd of a process outside the tree is refused', async () => {
  const v = startVictim('fd-pidfd', { args: ['outside'] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ fd=(\d+)/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-pidfd-img-') }), {
    code: 'UNSUPPORTED',
    message: `Cannot dump fd ${m[1]} of process ${v.pid}: its pidfd refers to process 1, which is not in the dumped tree`,
  });
  assert.ok(v.alive(), 'a refused dump leaves the process running');
});

test('a pidfd of a reaped process is refused', async () => {
  const v = startVictim('fd-pidfd', { args: ['reaped'] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ fd=(\d+)/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-pidfd-img-') }), {
    code: 'UNSUPPORTED',
    message: `Cannot dump fd ${m[1]} of process ${v.pid}: its pidfd refers to a process that has exited and been reaped: no pidfd can be made again for it`,
  });
  assert.ok(v.alive(), 'a refused dump leaves the process running');
});

test('pidfds of processes restored after their holder: a parent holds its children\'s, a child its parent\'s, its younger sibling\'s and that one\'s child\'s', async () => {
  const v = startVictim('fd-pidfd', { args: ['sibling'] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ first=(\d+) second=(\d+)/);
  await v.waitFor(/FIRST fd=(\d+)/);
  const [first, second] = [Number(m[1]), Number(m[2])];
  const nephew = Number((await v.waitFor(/NEPHEW pid=(\d+)/))[1]);
  cleanups.push(() => killQuietly([first, second, nephew]));
  await selfCheckRoundTrip(v, {
    imagesDir: cleanups.tempDir('ckpt-pidfd-img-'),
    pass: ['pidfds-of-children', 'pidfd-of-parent-from-child', 'pidfd-of-younger-sibling', 'pidfd-of-siblings-child'],
    alsoGone: [first, second, nephew],
  });
});
