/**
 * System V message queues and semaphores through the real engine (victim sysv-ipc.c):
 * a semaphore set with two threads waiting on it (semop, semtimedop), a queue with
 * messages and a lowered qbytes, and a thread waiting in msgrcv. The victim checks
 * itself on SIGUSR1 after a restore that must create the objects again, after one that
 * finds them still there, and after a leave-running dump (the waits must not end in
 * EINTR). A changed set fails the restore; a process with SEM_UNDO is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync, truncateSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { isCkptError } from '../../src/common/errors.js';
import { ipcRemove, kill, semSetAll, SIG } from '../../src/sys/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = ['sem-values', 'sem-perm', 'sem-blocked-semop', 'sem-blocked-semtimedop', 'msg-messages', 'msg-perm', 'msg-blocked-msgrcv'];

interface Ids {
  sem: number;
  msg: number;
  msg2: number;
}

function removeAll(ids: Ids): void {
  for (const [kind, id] of [['sem', ids.sem], ['msg', ids.msg], ['msg', ids.msg2]] as const) {
    try {
      ipcRemove(kind, id);
    } catch {
      // removed already
    }
  }
}

async function start(args: string[] = []): Promise<{ v: Victim; ids: Ids }> {
  const v = startVictim('sysv-ipc', { args });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ sem=(\d+) msg=(\d+) msg2=(\d+)/);
  const ids = { sem: Number(m[1]), msg: Number(m[2]), msg2: Number(m[3]) };
  cleanups.push(() => removeAll(ids));
  return { v, ids };
}

async function assertChecks(v: Victim): Promise<void> {
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/^DONE$/m);
  const out = v.output();
  assert.doesNotMatch(out, /^FAIL/m, out);
  for (const c of CHECKS) assert.match(out, new RegExp(`^PASS ${c}$`, 'm'), `check ${c}:\n${out}`);
}

async function dumpAndKill(): Promise<{ v: Victim; ids: Ids; dir: string }> {
  const { v, ids } = await start();
  const dir = cleanups.tempDir('ckpt-sysv-img-');
  dump(v.pid, { imagesDir: dir });
  const logAtDump = statSync(v.log).size;
  await waitGone(v.pid);
  truncateSync(v.log, logAtDump);
  return { v, ids, dir };
}

async function restoreAndCheck(v: Victim, dir: string): Promise<void> {
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(rv.pid, v.pid);
  assert.deepEqual(r.warnings, []);
  await assertChecks(rv);
}

test('SysV queues and semaphore sets are created again with their ids, contents and waiters', async () => {
  const { v, ids, dir } = await dumpAndKill();
  removeAll(ids);
  await restoreAndCheck(v, dir);
});

test('SysV objects that outlived the dumped process are kept when unchanged', async () => {
  const { v, dir } = await dumpAndKill();
  await restoreAndCheck(v, dir);
});

test('a leave-running dump lets semop, semtimedop and msgrcv wait on without EINTR', async () => {
  const { v } = await start();
  dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-sysv-img-'), leaveRunning: true });
  await assertChecks(v);
});

test('a semaphore set changed since the dump fails the restore, naming it', async () => {
  const { v, ids, dir } = await dumpAndKill();
  semSetAll(ids.sem, [1, 1, 1, 1]);
  assert.throws(
    () => restore({ imagesDir: dir }),
    (e: unknown) => isCkptError(e, 'FILE_CHANGED') && new RegExp(`semaphore set ${ids.sem} .*ipcrm -s ${ids.sem}`).test(e.message),
  );
  assert.ok(!existsSync(`/proc/${v.pid}`));
});

test('a process with semaphore undo adjustments (SEM_UNDO) is refused, naming it', async () => {
  const { v } = await start(['undo']);
  assert.throws(
    () => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-sysv-img-') }),
    (e: unknown) => isCkptError(e, 'UNSUPPORTED') && new RegExp(`process ${v.pid}: .*SEM_UNDO`).test(e.message),
  );
  assert.ok(v.alive());
});
