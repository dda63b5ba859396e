/**
 * SysV shared memory segments. Dump: the attributes from /proc/sysvipc/shm (the
 * segment's inode number is its id). Restore works like SysV queues and semaphore sets
 * (ipc/msg.ts, docs/saved-state.md "IPC"): before anything is created, every saved
 * segment is checked against the namespace (planSysvSegments): one still there with the
 * same id, key, size, mode, owner and contents (it outlives a killed process) is kept as
 * it is; a free id (and key) is created again with that id (shm_next_id); anything else
 * (the id or key used by another segment, or the segment changed since the dump) fails
 * the restore with FILE_CHANGED naming it, and nothing is created. A created segment is
 * removed again if the restore fails. The restorer attaches it once, reopens it through
 * /proc/self/map_files to fill it, and detaches; the processes then attach it with an
 * injected shmat at their old address.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { ipcRemove, NR, rawSyscall, shmSet, SysError } from '../../sys/index.js';
import type { Undo } from '../../infect/index.js';
import type { ObjectPages, RestoreContext, SharedObjects } from '../types.js';
import { createWithId, hexKey } from '../ipc/table.js';
import type { SysvSegment } from './state.js';

const IPC_CREAT = 0o1000;
const IPC_EXCL = 0o2000;
const SHM_DEST = 0o1000;
const SHM_RDONLY = 0o10000;
const PAGE = 4096;
const CHUNK = 4 * 1024 * 1024;

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
/** Old id → what planSysvSegments decided for it. */
const plans = new WeakMap<SharedObjects, Map<number, 'keep' | 'create'>>();

function tableOf(shared: SharedObjects): Map<number, { id: number; dest: boolean }> {
  let t = segments.get(shared);
  if (!t) segments.set(shared, (t = new Map()));
  return t;
}

function shmget(key: number, size: number, flags: number): number {
  const r = rawSyscall(NR.shmget, [key, size, flags]);
  if (r.ret === -1n) throw new SysError(`shmget(key ${hexKey(key)}, ${size})`, r.errno);
  return Number(r.ret);
}

const removeSegment = (id: number): void => ipcRemove('shm', id);

/** Runs fn with a restorer-local fd on segment `id`'s memory (attached for as long as it runs). */
function withSegmentFd<T>(id: number, args: { size: number; write: boolean }, fn: (fd: number) => T): T {
  const at = rawSyscall(NR.shmat, [id, 0, args.write ? 0 : SHM_RDONLY]);
  if (at.ret === -1n) throw new SysError(`shmat(${id})`, at.errno);
  const addr = BigInt.asUintN(64, at.ret);
  const len = BigInt(Math.ceil(args.size / PAGE) * PAGE);
  try {
    return fn(openSync(`/proc/self/map_files/${addr.toString(16)}-${(addr + len).toString(16)}`, args.write ? 'r+' : 'r'));
  } finally {
    rawSyscall(NR.shmdt, [addr]);
  }
}

/** Whether the segment's bytes are the saved pages, with zeros everywhere else. */
function sameContents(id: number, args: { size: number; pages: ObjectPages }): boolean {
  return withSegmentFd(id, { size: args.size, write: false }, (fd) => {
    const pf = openSync(args.pages.path, 'r');
    const now = Buffer.allocUnsafeSlow(CHUNK);
    const want = Buffer.allocUnsafeSlow(CHUNK);
    try {
      for (let off = 0; off < args.size; off += CHUNK) {
        const len = Math.min(CHUNK, args.size - off);
        if (readSync(fd, now, 0, len, off) !== len) return false;
        want.fill(0, 0, len);
        for (const run of args.pages.runs) {
          const from = Math.max(off, Number(run.vaddr));
          const to = Math.min(off + len, Number(run.vaddr) + run.nrPages * PAGE);
          if (from < to) readSync(pf, want, from - off, to - from, Number(run.fileOffset) + from - Number(run.vaddr));
        }
        if (!now.subarray(0, len).equals(want.subarray(0, len))) return false;
      }
      return true;
    } finally {
      closeSync(pf);
      closeSync(fd);
    }
  });
}

export interface SavedSegment {
  seg: SysvSegment;
  size: number;
  pages: ObjectPages;
}

/**
 * Decides, before anything of the restore is made, what becomes of each saved segment:
 * 'keep' (still there, unchanged) or 'create'; throws FILE_CHANGED naming the first one
 * whose id or key another segment holds, or that changed since the dump.
 */
export function planSysvSegments(shared: SharedObjects, saved: readonly SavedSegment[]): void {
  const plan = new Map<number, 'keep' | 'create'>();
  plans.set(shared, plan);
  const rows = readRows();
  for (const { seg, size, pages } of saved) {
    if (plan.has(seg.id)) continue;
    const what = `SysV shm segment ${seg.id} (key ${hexKey(seg.key)})`;
    const row = rows.find((r) => r.id === seg.id);
    if (row) {
      const same =
        row.key === seg.key && row.size === size && (row.perms & 0o777) === seg.mode && row.uid === seg.uid && row.gid === seg.gid &&
        (row.perms & SHM_DEST) === (seg.dest ? SHM_DEST : 0) && sameContents(seg.id, { size, pages });
      if (!same) {
        throw new CkptError('FILE_CHANGED', `Cannot restore ${what}: id ${seg.id} is in use by a segment that is not the saved one (key ${hexKey(row.key)}, ${row.size} bytes, or other contents); remove it (ipcrm -m ${seg.id}) to restore the saved segment`);
      }
      plan.set(seg.id, 'keep');
      continue;
    }
    const other = seg.key === 0 ? undefined : rows.find((r) => r.key === seg.key);
    if (other) throw new CkptError('FILE_CHANGED', `Cannot restore ${what}: key ${hexKey(seg.key)} is in use by segment ${other.id}`);
    plan.set(seg.id, 'create');
  }
}

function createSegment(seg: SysvSegment, args: { size: number; undo: Undo }): number {
  const id = createWithId('shm', {
    id: seg.id,
    create: () => shmget(seg.key, args.size, IPC_CREAT | IPC_EXCL | seg.mode),
    consume: () => removeSegment(shmget(0, PAGE, IPC_CREAT | 0o600)),
  });
  args.undo.push(`remove SysV shm segment ${id}`, () => removeSegment(id));
  if (id !== seg.id) throw new CkptError('UNSUPPORTED', `Cannot restore SysV shm segment ${seg.id}: the kernel gave id ${id}`);
  // Created with the restorer's uid and gid: the saved owner (the mode is the one asked for).
  shmSet(id, { uid: seg.uid, gid: seg.gid, mode: seg.mode });
  return id;
}

/**
 * Makes segment `seg` (or finds it kept, see planSysvSegments) and returns a local fd on
 * its memory, and whether it still has to be filled.
 */
export function createSysvSegment(ctx: RestoreContext, seg: SysvSegment, size: number): { fd: number; fill: boolean } {
  const plan = plans.get(ctx.shared)?.get(seg.id);
  if (!plan) throw new CkptError('INTERNAL', `SysV segment ${seg.id} was not checked before the restore began`);
  const keep = plan === 'keep';
  if (!keep) createSegment(seg, { size, undo: ctx.undo });
  const fd = withSegmentFd(seg.id, { size, write: !keep }, (f) => f);
  // A kept segment removed before the dump is still marked: nothing to do once attached.
  tableOf(ctx.shared).set(seg.id, { id: seg.id, dest: seg.dest && !keep });
  return { fd, fill: !keep };
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
  removeSegment(e.id);
  e.dest = false;
}
