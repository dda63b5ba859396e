import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { readChildren } from '../../src/proc/index.js';
import { startVictim, waitGone, killQuietly } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('python3 multiprocessing Pool (fork, pipes, a semaphore in /dev/shm) keeps working through its queue after restore', async () => {
  const script = new URL('../victims/py-mp.py', import.meta.url).pathname;
  const v = startVictim('/usr/bin/env', { args: ['python3', script] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/ROUND 3 /, 30_000);
  const kids = readChildren(v.pid);
  // The pool parent first: killed while it lives, a worker is replaced by a new one that outlives the test.
  cleanups.push(() => killQuietly([v.pid, ...kids]));
  assert.ok(kids.length >= 3, `the pool runs its worker processes (${kids.length})`);
  const dir = join(tmpdir(), `ckpt-pymp-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  const d = dump(v.pid, { imagesDir: dir });
  assert.equal(d.processes, kids.length + 1);
  await waitGone(v.pid);
  for (const k of kids) await waitGone(k);
  const last = Number([...v.output().matchAll(/ROUND (\d+) /g)].at(-1)![1]);
  const r = restore({ imagesDir: dir });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(r.pid, v.pid);
  assert.deepEqual(readChildren(v.pid), kids, 'the same workers, with the same PIDs');
  await v.waitFor(new RegExp(`ROUND ${last + 5} `), 30_000);
  assert.doesNotMatch(v.output(), /FAIL/);
});
