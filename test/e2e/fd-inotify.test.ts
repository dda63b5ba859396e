/**
 * inotify through the real engine (fd-inotify.c): watches with gaps in their numbers,
 * on a directory, a one-shot file watch, a symlink's own inode and a directory renamed
 * since, are restored by path with the same numbers; after restore the victim makes
 * each fire and checks the number the event carries. Unread events and a watch on a
 * deleted file are refused at dump, and the target runs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = ['inotify-empty', 'inotify-flags', 'inotify-create', 'inotify-oneshot', 'inotify-oneshot-gone', 'inotify-symlink', 'inotify-renamed', 'inotify-same-watch'];

test('inotify watches keep their numbers, masks and inodes across dump and restore', async () => {
  const v = startVictim('fd-inotify');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ wds=(\S+)/);
  assert.equal(m[1], '1,3,4,10', 'the victim made gaps in the watch numbers');
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-inotify-img-'), pass: CHECKS });
});

test('an inotify instance with unread events is refused, naming how many bytes wait', async () => {
  const v = startVictim('fd-inotify', { args: ['pending'] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ fd=(\d+)/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-inotify-img-') }), {
    code: 'UNSUPPORTED',
    message: `Cannot dump fd ${m[1]} of process ${v.pid}: its inotify instance has 32 bytes of events not read yet, which cannot be saved without consuming them`,
  });
  assert.ok(v.alive(), 'a refused dump leaves the process running');
});

test('an inotify watch on a deleted file is refused', async () => {
  const v = startVictim('fd-inotify', { args: ['deleted'] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ fd=(\d+) wd=(\d+)/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-inotify-img-') }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`^Cannot dump fd ${m[1]} of process ${v.pid}: its inotify watch ${m[2]} \\(mask 0x2, inode \\d+\\) cannot be restored: it is deleted \\(.*/g \\(deleted\\)\\)$`),
  });
  assert.ok(v.alive(), 'a refused dump leaves the process running');
});
