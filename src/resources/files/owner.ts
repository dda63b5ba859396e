/**
 * Signal-driven I/O state of an open file description: its owner (F_SETOWN /
 * F_SETOWN_EX: a thread, a process or a process group, who gets SIGIO/SIGURG and lease
 * break signals), the signal sent instead of SIGIO (F_SETSIG) and O_ASYNC. Dump reads
 * the owner and signal on a copy of the fd taken with pidfd_getfd (the same
 * description, so nothing is injected); fdinfo's flags already carry O_ASYNC.
 *
 * Restore runs after the locks (F_SETLEASE makes the caller the owner): in the process
 * that opened the description, F_SETSIG, F_SETOWN_EX and then O_ASYNC through F_SETFL
 * (which open(2) cannot set: the kernel registers the fd for SIGIO there), each
 * injected. The owner must exist by then: a process restored earlier, this process, its
 * threads and children, or a process outside the tree that still runs; another one fails
 * the restore with ESRCH, named.
 */
import { addressOf, call, closeFd, errnoName, NR, pidfdGetfd } from '../../sys/index.js';
import type { FdFacts } from './facts.js';
import { O } from './flags.js';
import { dumpError, restoreError, type KindRestoreContext } from './kinds/kind.js';
import type { FdEntry, FdOwner } from './schema.js';

const F_GETFL = 3;
const F_SETFL = 4;
const F_SETSIG = 10;
const F_GETSIG = 11;
const F_SETOWN_EX = 15;
const F_GETOWN_EX = 16;
const OWNER_TYPES = ['tid', 'pid', 'pgrp'] as const; // F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP

const F_GET_RW_HINT = 1035;
const F_SET_RW_HINT = 1036;

/**
 * The owner and signal of fd `f`'s description (undefined when neither is set) and, for a
 * regular file (`regular`), its inode's write-life hint (F_GET_RW_HINT; undefined when
 * none). `pidfd`: a pidfd of the process, opened once for all its fds (~20 us each saved).
 */
export function dumpFcntlState(f: Pick<FdFacts, 'pid' | 'fd'>, args: { pidfd: number; regular: boolean }): { owner?: FdOwner; rwHint?: number } {
  const local = pidfdGetfd(args.pidfd, f.fd, { pid: f.pid });
  try {
    const owner = readOwner(f, local);
    const rwHint = args.regular ? readRwHint(local) : undefined;
    return { ...(owner ? { owner } : {}), ...(rwHint ? { rwHint } : {}) };
  } finally {
    closeFd(local);
  }
}

/**
 * The write-life hint (RWH_WRITE_LIFE_*) set on the inode with F_SET_RW_HINT: the kernel
 * keeps it in the in-memory inode only, so a file recreated at restore (deleted, O_TMPFILE)
 * or an inode evicted since the dump would come back without it.
 */
function readRwHint(local: number): number | undefined {
  const b = Buffer.alloc(8);
  try {
    call(NR.fcntl, [local, F_GET_RW_HINT, addressOf(b)], { name: 'fcntl(F_GET_RW_HINT)' });
  } catch {
    return undefined; // a kernel without it: nothing could have set one
  }
  return Number(b.readBigUInt64LE(0)) || undefined;
}

function readOwner(f: Pick<FdFacts, 'pid' | 'fd'>, local: number): FdOwner | undefined {
  {
    const ex = Buffer.alloc(8);
    call(NR.fcntl, [local, F_GETOWN_EX, addressOf(ex)], { name: 'fcntl(F_GETOWN_EX)', pid: f.pid });
    const sig = Number(call(NR.fcntl, [local, F_GETSIG, 0], { name: 'fcntl(F_GETSIG)', pid: f.pid }));
    const type = OWNER_TYPES[ex.readInt32LE(0)];
    const id = ex.readInt32LE(4);
    if (id === 0 && sig === 0) return undefined;
    if (type === undefined) throw dumpError(f, { code: 'UNSUPPORTED', reason: `its owner has the unknown type ${ex.readInt32LE(0)}` });
    return { type, id, sig };
  }
}

function fail(rc: KindRestoreContext, e: FdEntry, why: { what: string; r: bigint }): never {
  throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `cannot restore ${why.what}: fcntl failed with ${errnoName(Number(-why.r))}` });
}

/** Sets the saved owner, signal and O_ASYNC of the descriptions this process opened (`opened`). */
export function restoreOwners(rc: KindRestoreContext, opts: { fds: readonly FdEntry[]; opened: ReadonlySet<number> }): void {
  const remote = rc.ctx.remote;
  for (const e of opts.fds) {
    if (!opts.opened.has(e.fd) || !('flags' in e)) continue;
    const owner = 'owner' in e ? e.owner : undefined;
    if (owner) {
      let r = remote.raw(NR.fcntl, [e.fd, F_SETSIG, owner.sig]);
      if (r < 0n) fail(rc, e, { what: `its I/O signal ${owner.sig}`, r });
      const ex = Buffer.alloc(8);
      ex.writeInt32LE(OWNER_TYPES.indexOf(owner.type), 0);
      ex.writeInt32LE(owner.id, 4);
      r = remote.raw(NR.fcntl, [e.fd, F_SETOWN_EX, remote.put(ex)]);
      if (r < 0n) fail(rc, e, { what: `its owner (${owner.type} ${owner.id})`, r });
    }
    if ('rwHint' in e && e.rwHint) {
      const hint = Buffer.alloc(8);
      hint.writeBigUInt64LE(BigInt(e.rwHint));
      const r = remote.raw(NR.fcntl, [e.fd, F_SET_RW_HINT, remote.put(hint)]);
      if (r < 0n) fail(rc, e, { what: `its write-life hint ${e.rwHint}`, r });
    }
    if (e.flags & O.ASYNC) {
      const fl = remote.raw(NR.fcntl, [e.fd, F_GETFL, 0]);
      if (fl < 0n) fail(rc, e, { what: 'O_ASYNC', r: fl });
      const r = remote.raw(NR.fcntl, [e.fd, F_SETFL, Number(fl) | O.ASYNC]);
      if (r < 0n) fail(rc, e, { what: 'O_ASYNC', r });
    }
  }
}
