/**
 * SysV shared memory segments at restore (shm-sysv.c, memory/sysv.ts), like SysV queues
 * and semaphore sets: a segment still there unchanged after the dump is kept; one
 * removed is made again with its id, key, owner, mode and contents; a segment whose
 * contents changed, or whose key another segment holds, fails the restore with
 * FILE_CHANGED and nothing is created.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { ipcRemove, NR, rawSyscall } from '../../src/sys/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { restoreAndCheck } from '../helpers/self-check.js';
import { startVictim, waitGone, type Victim } from '../helpers/victim.js';

const cleanups = useCleanups();
const PG = 4096;

/** "key id" of every segment in the namespace. */
function segments(): string[] {
  return readFileSync('/proc/sysvipc/shm', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/).slice(0, 2).join(' ')).filter((l) => l !== '').sort();
}

function removeQuietly(id: number): void {
  try {
    ipcRemove('shm', id);
  } catch {
    // gone already
  }
}

/** Writes one byte into segment id at offset, from this process. */
function poke(id: number, offset: number): void {
  const at = rawSyscall(NR.shmat, [id, 0, 0]);
  assert.notEqual(at.ret, -1n, `shmat ${id}`);
  const addr = BigInt.asUintN(64, at.ret);
  const fd = openSync(`/proc/self/map_files/${addr.toString(16)}-${(addr + BigInt(3 * PG)).toString(16)}`, 'r+');
  writeSync(fd, Buffer.from([0xee]), 0, 1, offset);
  closeSync(fd);
  rawSyscall(NR.shmdt, [addr]);
}

async function dumped(): Promise<{ v: Victim; id: number; key: number; dir: string }> {
  const key = 0x6b700000 + Math.floor(Math.random() * 0xffff);
  const v = startVictim('shm-sysv', { args: [String(key)] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ id=(\d+)|SETUP FAIL.*/);
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  const id = Number(m[1]);
  cleanups.push(() => removeQuietly(id));
  const dir = cleanups.tempDir('ckpt-shm-sysv-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  return { v, id, key, dir };
}

const restoredPasses = (v: Victim, dir: string) => restoreAndCheck(v, { dir, checks: 4, cleanups });

test('a segment still there unchanged is kept', async () => {
  const { v, dir } = await dumped();
  const before = segments();
  await restoredPasses(v, dir);
  assert.deepEqual(segments(), before, 'no segment made');
});

test('a removed segment is made again with its id, key, owner, mode and contents', async () => {
  const { v, id, key, dir } = await dumped();
  ipcRemove('shm', id);
  await restoredPasses(v, dir);
  assert.ok(segments().includes(`${key} ${id}`), 'same key and id');
});

test('a segment changed since the dump, or its key taken, fails the restore and nothing is made', async () => {
  const { id, key, dir } = await dumped();
  poke(id, PG + 100); // page 1 was never written
  const before = segments();
  assert.throws(() => restore({ imagesDir: dir }), { code: 'FILE_CHANGED', message: new RegExp(`^Cannot restore SysV shm segment ${id} .*ipcrm -m ${id}`) });
  assert.deepEqual(segments(), before);

  ipcRemove('shm', id);
  const other = Number(rawSyscall(NR.shmget, [key, PG, 0o1000 | 0o600]).ret);
  cleanups.push(() => removeQuietly(other));
  const before2 = segments();
  assert.throws(() => restore({ imagesDir: dir }), { code: 'FILE_CHANGED', message: new RegExp(`key 0x${key.toString(16)} is in use by segment ${other}`) });
  assert.deepEqual(segments(), before2);
});
