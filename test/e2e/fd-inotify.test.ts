/**
 * inotify through the real engine (fd-inotify.c): watches with gaps in their numbers,
 * on a directory, a one-shot file watch, a symlink's own inode and a directory renamed
 * since, are restored by path with the same numbers; after restore the victim makes
 * each fire and checks the number the event carries. Unread events and a watch on a
 * deleted file are refused at dump, and the target runs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = ['inotify-empty', 'inotify-flags', 'inotify-create', 'inotify-oneshot', 'inotify-oneshot-gone', 'inotify-symlink', 'inotify-renamed', 'inotify-same-watch'];

test('inotify watches keep their numbers, masks and inodes across dump and restore', async () => {
  const v = startVictim('fd-inotify');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ wds=(\S+)/);
  assert.equal(m[1], '1,3,4,10', 'the victim made gaps in the watch numbers');
  const dir = cleanups.tempDir('ckpt-inotify-img-');
  const d = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(d.warnings, []);
  const logAtDump = statSync(v.log).size;
  await waitGone(v.pid);
  truncateSync(v.log, logAtDump);

  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.deepEqual(r.warnings, []);
  kill(rv.pid, SIG.SIGUSR1);
  await rv.waitFor(/^DONE$/m);
  const out = rv.output();
  assert.doesNotMatch(out, /^FAIL/m, out);
  for (const c of CHECKS) assert.match(out, new RegExp(`^PASS ${c}$`, 'm'), `check ${c}:\n${out}`);
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
