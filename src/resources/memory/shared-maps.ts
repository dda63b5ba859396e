/**
 * Mapping shared memory objects into the process being rebuilt: memfd and anonymous
 * shmem areas are mmap'ed from a temporary fd the target takes from the restorer
 * (pidfd_getfd), SysV segments are attached with an injected shmat at their old address.
 */
import { CkptError } from '../../common/errors.js';
import { NR } from '../../sys/index.js';
import { borrowLocalFd, dropRestorerPidfd } from '../transfer.js';
import type { RestoreContext } from '../types.js';
import { objectLocalFd } from './shmem.js';
import { sysvAttached, sysvIdOf } from './sysv.js';
import type { MemoryState, ShmemObject, Vma } from './state.js';

const PAGE = 4096n;
const SHM = { RDONLY: 0o10000, REMAP: 0o40000, EXEC: 0o100000 } as const;

function objectOf(ctx: RestoreContext, state: MemoryState, v: Vma): ShmemObject {
  const obj = state.shmem[v.shm ?? -1];
  if (!obj || obj.kind !== v.kind) throw new CkptError('BAD_IMAGE', `Cannot restore process ${ctx.pid}: area at 0x${v.start.toString(16)} names no ${v.kind} object`);
  return obj;
}

/** Target fds of the objects this process maps, taken once each, closed by close(). */
export class SharedMaps {
  private fds = new Map<number, number>();
  constructor(private ctx: RestoreContext, private state: MemoryState) {}

  fdFor(v: Vma): number {
    const known = this.fds.get(v.shm ?? -1);
    if (known !== undefined) return known;
    const local = objectLocalFd(this.ctx, objectOf(this.ctx, this.state, v));
    const fd = borrowLocalFd(this.ctx.remote, local);
    this.fds.set(v.shm!, fd);
    return fd;
  }

  close(): void {
    if (this.fds.size === 0) return;
    for (const fd of this.fds.values()) this.ctx.remote.call(NR.close, [fd], 'close');
    this.fds.clear();
    dropRestorerPidfd(this.ctx.remote);
  }
}

/**
 * Attaches every SysV segment at its old address, before any other area is mapped
 * (shmat maps the whole segment; parts the process had unmapped are unmapped again).
 */
export function attachSysv(ctx: RestoreContext, state: MemoryState): void {
  const r = ctx.remote;
  const groups = new Map<string, { obj: ShmemObject; base: bigint; vmas: Vma[] }>();
  for (const v of state.vmas) {
    if (v.kind !== 'sysv') continue;
    const obj = objectOf(ctx, state, v);
    const base = v.start - v.offset;
    const key = `${v.shm}:${base}`;
    const g = groups.get(key) ?? { obj, base, vmas: [] };
    g.vmas.push(v);
    groups.set(key, g);
  }
  for (const { obj, base, vmas } of groups.values()) {
    objectLocalFd(ctx, obj);
    const id = sysvIdOf(ctx.shared, obj.ino);
    const write = vmas.some((v) => v.prot & 2);
    const exec = vmas.some((v) => v.prot & 4);
    const flags = SHM.REMAP | (write ? 0 : SHM.RDONLY) | (exec ? SHM.EXEC : 0);
    const got = BigInt.asUintN(64, r.call(NR.shmat, [id, base, flags], `shmat(${id})`));
    if (got !== base) throw new CkptError('INTERNAL', `Cannot restore process ${ctx.pid}: SysV segment ${id} attached at 0x${got.toString(16)}, not 0x${base.toString(16)}`);
    sysvAttached(ctx.shared, obj.ino);
    const attachedProt = 1 | (write ? 2 : 0) | (exec ? 4 : 0);
    for (const v of vmas) {
      if (v.prot !== attachedProt) r.call(NR.mprotect, [v.start, v.end - v.start, v.prot], 'mprotect');
    }
    // Unmap what the process had unmapped of the attachment.
    const end = base + ((BigInt(obj.size) + PAGE - 1n) / PAGE) * PAGE;
    let at = base;
    for (const v of [...vmas].sort((a, b) => (a.start < b.start ? -1 : 1))) {
      if (v.start > at) r.call(NR.munmap, [at, v.start - at], 'munmap');
      at = v.end;
    }
    if (at < end) r.call(NR.munmap, [at, end - at], 'munmap');
  }
}
