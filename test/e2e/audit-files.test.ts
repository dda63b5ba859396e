/**
 * Unusual file fds a real program holds (audit-files.c): a directory mid-readdir, O_PATH,
 * O_TMPFILE files that must stay linkable, O_SYNC/O_DSYNC/O_DIRECT/O_NOATIME, devices, a
 * renamed file, F_SEAL_FUTURE_WRITE, an fd at RLIMIT_NOFILE - 1. The victim checks itself
 * after restore. A file or directory replaced by another inode between dump and restore
 * is refused, never opened in its place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renameSync, rmSync, mkdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = [
  'dir-readdir', 'o-path', 'o-path-no-read', 'tmpfile-data', 'tmpfile-mode', 'tmpfile-linkable', 'flags-append-sync',
  'flags-dsync-noatime', 'flags-direct', 'proc-self-status', 'dev-zero', 'dev-full', 'dev-null-append', 'renamed',
  'memfd-future-write', 'memfd-future-write-enforced', 'o-path-symlink', 'o-path-fifo', 'o-path-device', 'high-fd',
];

async function dumped() {
  const v = startVictim('audit-files');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-audit-files-');
  const d = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(d.warnings, []);
  const logAtDump = statSync(v.log).size;
  await waitGone(v.pid);
  truncateSync(v.log, logAtDump);
  return { v, dir };
}

test('unusual file fds come back as they were: readdir position, O_PATH, linkable O_TMPFILE, flags, seals, high fds', async () => {
  const { v, dir } = await dumped();
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

test('a file or directory replaced by another inode since the dump is refused at restore, naming it', async () => {
  const { v, dir } = await dumped();
  const file = join(v.dir, 'after-rename');
  writeFileSync(join(v.dir, 'new'), 'another file\n');
  renameSync(join(v.dir, 'new'), file);
  assert.throws(() => restore({ imagesDir: dir }), {
    code: 'FILE_CHANGED',
    message: new RegExp(`^Cannot restore fd 15 of process ${v.pid}: ${file} is another file since the dump \\(inode \\d+, was \\d+\\)$`),
  });
  await waitGone(v.pid); // the failed restore's process, killed: reaped by us (a subreaper)
  const many = join(v.dir, 'many');
  rmSync(file);
  rmSync(many, { recursive: true });
  mkdirSync(many);
  assert.throws(() => restore({ imagesDir: dir }), { code: 'FILE_CHANGED', message: /^Cannot restore fd 3 of process \d+: .*\/many is another file since the dump/ });
});
