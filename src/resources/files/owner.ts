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
import { readFileSync } from 'node:fs';
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

const F_GETOWNER_UIDS = 17;

/** The real and effective uid F_SETOWN recorded (CONFIG_CHECKPOINT_RESTORE), or undefined without it. */
function ownerUids(local: number): [number, number] | undefined {
  const b = Buffer.alloc(8);
  try {
    call(NR.fcntl, [local, F_GETOWNER_UIDS, addressOf(b)], { name: 'fcntl(F_GETOWNER_UIDS)' });
  } catch {
    return undefined;
  }
  return [b.readUInt32LE(0), b.readUInt32LE(4)];
}

/**
 * Runs `set` (an injected F_SETOWN_EX) with the thread's real and effective uid as saved,
 * so the kernel records them with the owner (they decide whether SIGIO may be sent); the
 * thread, still root while its files are rebuilt, keeps saved uid 0 to come back.
 */
function asOwnerUids(rc: KindRestoreContext, args: { e: FdEntry; uids: readonly [number, number] }, set: () => bigint): bigint {
  const remote = rc.ctx.remote;
  const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${rc.ctx.pid}/status`, 'utf8'));
  const was = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
  const r = remote.raw(NR.setresuid, [args.uids[0], args.uids[1], 0]);
  if (r < 0n) fail(rc, args.e, { what: `the uids ${args.uids.join('/')} of its owner`, r, syscall: 'setresuid' });
  try {
    return set();
  } finally {
    const back = remote.raw(NR.setresuid, was);
    if (back < 0n) fail(rc, args.e, { what: 'the uids of the process after setting its owner', r: back, syscall: 'setresuid' });
  }
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
    const uids = id === 0 ? undefined : ownerUids(local);
    return { type, id, sig, ...(uids && (uids[0] || uids[1]) ? { uids } : {}) };
  }
}

function fail(rc: KindRestoreContext, e: FdEntry, why: { what: string; r: bigint; syscall?: string }): never {
  throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `cannot restore ${why.what}: ${why.syscall ?? 'fcntl'} failed with ${errnoName(Number(-why.r))}` });
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
      const setOwner = () => remote.raw(NR.fcntl, [e.fd, F_SETOWN_EX, remote.put(ex)]);
      r = owner.uids ? asOwnerUids(rc, { e, uids: owner.uids }, setOwner) : setOwner();
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
