/**
 * SysV shared memory segments. Dump: the attributes from /proc/sysvipc/shm (the
 * segment's inode number is its id). Restore: the segment with the same id is reused
 * when it is still there with the same key and size; otherwise it is created again
 * (asking the kernel for the old id through /proc/sys/kernel/shm_next_id). The
 * restorer attaches it once, reopens it through /proc/self/map_files to fill it, and
 * detaches; the processes then attach it with an injected shmat at their old address.
 */
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { NR, rawSyscall, SysError } from '../../sys/index.js';
import type { RestoreContext, SharedObjects } from '../types.js';
import type { SysvSegment } from './state.js';

const IPC_CREAT = 0o1000;
const IPC_EXCL = 0o2000;
const IPC_RMID = 0;
const SHM_DEST = 0o1000;
const NR_SHMDT = 67;
const NR_SHMCTL = 31;
const EEXIST = 17;
const NEXT_ID = '/proc/sys/kernel/shm_next_id';

interface Row {
  key: number;
  id: number;
  perms: number;
  size: number;
  uid: number;
  gid: number;
}

function readRows(): Row[] {
  const lines = readFileSync('/proc/sysvipc/shm', 'utf8').split('\n').slice(1);
  const rows: Row[] = [];
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    rows.push({ key: Number(f[0]), id: Number(f[1]), perms: parseInt(f[2]!, 8), size: Number(f[3]), uid: Number(f[7]), gid: Number(f[8]) });
  }
  return rows;
}

export function readSysvSegment(pid: number, id: number): SysvSegment {
  const row = readRows().find((r) => r.id === id);
  if (!row) throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: SysV shm segment ${id} is not in /proc/sysvipc/shm (another IPC namespace?)`);
  return { key: row.key, id, mode: row.perms & 0o777, dest: (row.perms & SHM_DEST) !== 0, uid: row.uid, gid: row.gid };
}

/** Old id → the segment's id in this restore, and whether it still has to be removed. */
const segments = new WeakMap<SharedObjects, Map<number, { id: number; dest: boolean }>>();

function tableOf(shared: SharedObjects): Map<number, { id: number; dest: boolean }> {
  let t = segments.get(shared);
  if (!t) segments.set(shared, (t = new Map()));
  return t;
}

function shmget(key: number, size: number, flags: number): { id: number; errno: number } {
  const r = rawSyscall(NR.shmget, [key, size, flags]);
  return r.ret === -1n ? { id: -1, errno: r.errno } : { id: Number(r.ret), errno: 0 };
}

function createWithId(ctx: RestoreContext, seg: SysvSegment, size: number): number {
  let asked = false;
  try {
    writeFileSync(NEXT_ID, String(seg.id));
    asked = true;
  } catch {
    // not allowed here: the kernel picks the id
  }
  const got = shmget(seg.key, size, IPC_CREAT | IPC_EXCL | seg.mode);
  if (asked && got.id < 0) {
    // The request stays pending after a failed get, and this kernel refuses a write of -1:
    // use it up on a private segment, or the next shmget of anyone would take that id.
    const tmp = shmget(0, 4096, IPC_CREAT | 0o600);
    if (tmp.id >= 0) rawSyscall(NR_SHMCTL, [tmp.id, IPC_RMID, 0]);
  }
  if (got.id >= 0) return got.id;
  if (got.errno === EEXIST) {
    const other = readRows().find((r) => r.key === seg.key);
    if (other && other.size === size) {
      ctx.warn(`SysV shm key 0x${seg.key.toString(16)} already exists as segment ${other.id}: reused it for segment ${seg.id}, its contents replaced with the saved ones`);
      return other.id;
    }
    throw new CkptError('UNSUPPORTED', `Cannot restore process ${ctx.pid}: SysV shm key 0x${seg.key.toString(16)} is taken by a segment of another size`);
  }
  throw new SysError(`shmget(key 0x${seg.key.toString(16)}, ${size})`, got.errno);
}

/** Makes (or reuses) segment `seg` and returns a local fd on its memory, to fill it. */
export function createSysvSegment(ctx: RestoreContext, seg: SysvSegment, size: number): number {
  const same = readRows().find((r) => r.id === seg.id);
  let id: number;
  if (same && same.key === seg.key && same.size === size) {
    ctx.warn(`SysV shm segment ${seg.id} still exists: reused it, its contents replaced with the saved ones`);
    id = seg.id;
  } else {
    id = createWithId(ctx, seg, size);
    if (id !== seg.id) ctx.warn(`SysV shm id ${seg.id} cannot be recreated (got ${id}): the process keeps its mappings, but calls with the old id will fail`);
  }
  const at = rawSyscall(NR.shmat, [id, 0, 0]);
  if (at.ret === -1n) throw new SysError(`shmat(${id})`, at.errno);
  const addr = BigInt.asUintN(64, at.ret);
  const len = BigInt(Math.ceil(size / 4096) * 4096);
  try {
    const fd = openSync(`/proc/self/map_files/${addr.toString(16)}-${(addr + len).toString(16)}`, 'r+');
    tableOf(ctx.shared).set(seg.id, { id, dest: seg.dest });
    return fd;
  } finally {
    rawSyscall(NR_SHMDT, [addr]);
  }
}

/** The id under which saved segment `oldId` exists in this restore (after objectLocalFd). */
export function sysvIdOf(shared: SharedObjects, oldId: number): number {
  const e = tableOf(shared).get(oldId);
  if (!e) throw new CkptError('INTERNAL', `SysV segment ${oldId} was not made before being attached`);
  return e.id;
}

/** Once a process has attached it: a segment removed before the dump is removed again. */
export function sysvAttached(shared: SharedObjects, oldId: number): void {
  const e = tableOf(shared).get(oldId);
  if (!e || !e.dest) return;
  rawSyscall(NR_SHMCTL, [e.id, IPC_RMID, 0]);
  e.dest = false;
}
