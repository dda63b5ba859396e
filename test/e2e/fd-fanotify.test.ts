/**
 * fanotify through the real engine (fd-fanotify.c): a notification group with a mark
 * on a directory's children and an ignore mark on one of them is restored with the same
 * flags and marks; after restore the victim checks the event it gets and the one the
 * ignore mark hides. Unread events are refused and the target runs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();

test('a fanotify group keeps its flags and marks across dump and restore', async () => {
  // A file system of its own, so that its mount and file system marks see no one else's events.
  const mnt = cleanups.tempDir('ckpt-fanotify-mnt-');
  mkdirSync(mnt, { recursive: true });
  assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'ckpt-fanotify', mnt]).status, 0, 'mount a tmpfs');
  cleanups.push(() => void spawnSync('umount', ['-l', mnt]));
  const v = startVictim('fd-fanotify', { args: [mnt] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-fanotify-img-'), pass: ['fanotify-empty', 'fanotify-event', 'fanotify-ignore', 'fanotify-mount-fs'] });
});

test('a fanotify group with unread events is refused', async () => {
  const v = startVictim('fd-fanotify', { args: ['pending'] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ fd=(\d+)/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-fanotify-img-') }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`^Cannot dump fd ${m[1]} of process ${v.pid}: its fanotify group has \\d+ bytes of events not read yet, which cannot be saved without consuming them$`),
  });
  assert.ok(v.alive(), 'a refused dump leaves the process running');
});
