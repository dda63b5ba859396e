/**
 * Big shared memory objects in a tree (bench-shm: 6 processes sharing a 4 MiB SysV
 * segment and a 4 MiB unlinked POSIX shm object) are copied beside the rest of the dump
 * by a worker thread (resources/memory/object-copy.ts) and joined before the tree is
 * released: after restore every process checks the whole pattern of both objects. The
 * second dump (of the restored tree, left running) reuses the worker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill } from '../../src/sys/index.js';
import { startVictim, waitGone, killQuietly } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const SIGUSR1 = 10;
const SIGKILL = 9;

async function verdict(v: { output(): string }, from: number): Promise<string> {
  const deadline = Date.now() + 30000;
  for (;;) {
    const m = /(PASS|FAIL) shm.*/.exec(v.output().slice(from));
    if (m) return m[0];
    if (Date.now() > deadline) throw new Error(`no verdict; output:\n${v.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a tree sharing two 4 MiB objects comes back with both whole, twice (killed, then left running)', async () => {
  const v = startVictim('bench-shm', { args: ['8'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+.*\n/, 60000);
  const pids = [...v.output().matchAll(/PROC \d+ (\d+)/g)].map((m) => Number(m[1]));
  assert.equal(pids.length, 6);
  cleanups.push(() => killQuietly(pids));

  const first = cleanups.tempDir('ckpt-shm-big-');
  dump(v.pid, { imagesDir: first });
  for (const p of pids) await waitGone(p);
  let from = v.output().length;
  restore({ imagesDir: first });
  kill(v.pid, SIGUSR1);
  assert.equal(await verdict(v, from), 'PASS shm procs=6 mib=8');

  const second = cleanups.tempDir('ckpt-shm-big-');
  dump(v.pid, { imagesDir: second, leaveRunning: true });
  for (const p of pids) kill(p, SIGKILL);
  for (const p of pids) await waitGone(p);
  from = v.output().length;
  restore({ imagesDir: second });
  kill(v.pid, SIGUSR1);
  assert.equal(await verdict(v, from), 'PASS shm procs=6 mib=8');
});
