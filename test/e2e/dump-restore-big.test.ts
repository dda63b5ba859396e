/**
 * Dump/restore of a process with a lot of state (test/victims/dr-big.c): 256 MiB of
 * patterned memory, a COW'd private file mapping, a PROT_NONE hole, a read-only area,
 * ymm15, signal handler/mask/pending, a seeked file and an unlinked file. The victim
 * checks itself on SIGUSR1 after restore.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

const CHECKS = [
  'big-memory', 'file-mapping', 'file-mapping-cow', 'file-mapping-perms', 'holed-area', 'hole-perms', 'ro-area',
  'sigusr1-handler', 'sigusr2-blocked-pending', 'file-offset', 'unlinked-file', 'sigusr2-delivered-once',
];

test('a 256 MiB process with mappings, ymm15, signals and files checks itself after restore', { timeout: 180_000 }, async () => {
  const v = startVictim('dr-big', { args: ['.', '256'] });
  cleanups.push(() => v.cleanup());
  const ready = await v.waitFor(/READY pid=\d+ avx=(\d)/, 60_000);
  const avx = ready[1] === '1';
  await v.waitFor(/^ARMED$/m, 60_000);
  const pre = v.output();
  assert.doesNotMatch(pre, /FAIL/, 'the victim passes its checks before the dump');

  const dir = cleanups.tempDir('ckpt-dr-big-');
  const d = dump(v.pid, { imagesDir: dir });
  assert.ok(d.bytes >= 256 * 1024 * 1024, `dumped ${d.bytes} bytes`);
  await waitGone(v.pid);

  const r = restore({ imagesDir: dir });
  const rv: Victim = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(r.pid, v.pid, 'same PID');
  kill(r.pid, SIG.SIGUSR1);
  await rv.waitFor(/^DONE fails=\d+$/m, 60_000);
  const post = rv.output().slice(pre.length);
  assert.doesNotMatch(post, /FAIL/, `no FAIL after restore:\n${post}`);
  for (const c of [...CHECKS, ...(avx ? ['ymm15'] : [])]) assert.match(post, new RegExp(`^PASS ${c}$`, 'm'), `PASS ${c}`);
  assert.match(post, /^DONE fails=0$/m);
  assert.ok(rv.alive());
});
