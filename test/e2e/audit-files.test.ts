/**
 * Unusual file fds a real program holds (audit-files.c): a directory mid-readdir, O_PATH,
 * O_TMPFILE files that must stay linkable (or not, made with O_EXCL), O_SYNC/O_DSYNC/O_DIRECT/O_NOATIME, devices, a
 * renamed file, F_SEAL_FUTURE_WRITE, an fd at RLIMIT_NOFILE - 1. The victim checks itself
 * after restore. A file or directory replaced by another inode between dump and restore
 * is refused, never opened in its place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { tamperImage } from '../helpers/tamper.js';
import { startVictim, waitGone } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = [
  'dir-readdir', 'o-path', 'o-path-no-read', 'tmpfile-data', 'tmpfile-mode', 'tmpfile-linkable', 'tmpfile-excl-unlinkable', 'flags-append-sync',
  'flags-dsync-noatime', 'flags-direct', 'proc-self-status', 'dev-zero', 'dev-full', 'dev-null-append', 'renamed',
  'memfd-future-write', 'memfd-future-write-enforced', 'o-path-symlink', 'o-path-fifo', 'o-path-device', 'high-fd',
];

async function started() {
  const v = startVictim('audit-files');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  return v;
}

test('unusual file fds come back as they were: readdir position, O_PATH, linkable O_TMPFILE, flags, seals, high fds', async () => {
  await selfCheckRoundTrip(await started(), { imagesDir: cleanups.tempDir('ckpt-audit-files-'), pass: CHECKS });
});

test('a file or directory replaced by another inode since the dump is refused at restore, naming it', async () => {
  const v = await started();
  const dir = cleanups.tempDir('ckpt-audit-files-');
  assert.deepEqual(dump(v.pid, { imagesDir: dir }).warnings, []);
  await waitGone(v.pid);
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

test('after another boot (another host) the inode is not compared: the replaced file opens by path', async () => {
  const v = await started();
  const dir = cleanups.tempDir('ckpt-audit-files-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const file = join(v.dir, 'after-rename');
  writeFileSync(join(v.dir, 'new'), 'another file\n');
  renameSync(join(v.dir, 'new'), file);
  tamperImage(dir, { name: `core-${v.pid}`, kind: 'core', change: (c) => {
    const files = (c['resources'] as Record<string, { fds: Record<string, unknown>[] }>)['files']!;
    const fd = files.fds.find((f) => f['path'] === file);
    assert.ok(fd?.['identity'], 'the renamed file is saved with its identity');
    (fd['identity'] as Record<string, unknown>)['boot'] = '00000000-0000-4000-8000-000000000000';
  } });
  const r = restore({ imagesDir: dir });
  cleanups.push(() => { try { process.kill(r.pid, 'SIGKILL'); } catch { /* gone */ } });
  assert.equal(readFileSync(`/proc/${r.pid}/fd/15`, 'utf8'), 'another file\n');
});

test('where the BPF iterator cannot run, an O_TMPFILE file is refused: made with O_EXCL or not cannot be told', async () => {
  const v = await started();
  process.env['CKPT_BPF_ITER'] = 'off';
  try {
    assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-audit-files-') }), {
      code: 'UNSUPPORTED', message: new RegExp(`^Cannot dump fd 6 of process ${v.pid}: cannot tell whether its O_TMPFILE file may still be linked`),
    });
  } finally {
    delete process.env['CKPT_BPF_ITER'];
  }
  assert.ok(v.alive());
});
