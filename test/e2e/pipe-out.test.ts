/**
 * A pipe whose other end is held outside the dump (pipe-out.c): the dump refuses the
 * process, naming the fd, and it runs on untouched; a pipe with no reader left at all
 * is restored as it is (a write still fails with EPIPE).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { killAll, startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';

const cleanups = useCleanups();
cleanups.push(() => killAll('pipe-out'));

async function child(mode: string): Promise<{ v: Victim; pid: number }> {
  const v = startVictim('pipe-out', { args: [mode] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=(\d+)|SETUP FAIL.*/);
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  return { v, pid: Number(m[1]) };
}

async function passes(v: Victim, pid: number): Promise<void> {
  kill(pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  assert.doesNotMatch(v.output(), /FAIL/, v.output());
  assert.match(v.output(), /^PASS /m);
}

test('a write end whose reader is outside the dump is refused, naming the fd; the process runs on', async () => {
  const { v, pid } = await child('reader');
  assert.throws(() => dump(pid, { imagesDir: cleanups.tempDir('ckpt-pipe-out-') }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`^Cannot dump fd 4 of process ${pid}: it holds only the write end of pipe:\\[\\d+\\], whose read end is held outside the dump`),
  });
  await passes(v, pid);
  await v.waitFor(/PARENT got 1/);
});

test('a write end of a pipe with no reader left is restored as it is', async () => {
  const { v, pid } = await child('noreader');
  const dir = cleanups.tempDir('ckpt-pipe-out-');
  dump(pid, { imagesDir: dir });
  await waitGone(pid);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  await passes(rv, r.pid);
});
