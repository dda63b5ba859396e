/**
 * Restore of the fd table by injected syscalls in the process being rebuilt. It
 * starts with the restorer's fds: everything not saved is closed, and every entry is
 * put in place (standard fds that led outside the tree from an fd of ckpt: inherit.ts). An entry whose open file
 * description is already in the shared table (opened for an earlier process of the
 * tree) gets a copy of it; otherwise it is opened — in the target (paths: opened
 * wherever the kernel puts it, moved to its number with dup3, seeked) or in the
 * restorer (pipes, sockets: handed over with pidfd_getfd) — and registered there.
 * Entries come in fd order, so a dup's original is always in place before the dup.
 */
import { listFds } from '../../proc/index.js';
import { closeFd, F, fcntl, SysError } from '../../sys/index.js';
import { grabFd } from '../transfer.js';
import { locallyAs } from '../process/fscreds.js';
import type { RestoreContext } from '../types.js';
import { isCloexec } from './flags.js';
import { restoreEpollWatches } from './kinds/epoll.js';
import { inheritedFd, stdioSource } from './kinds/inherit.js';
import { restoreMqueueNotify } from './kinds/mqueue.js';
import { restoreError, type KindRestoreContext, type Reopener, type ReopenKind } from './kinds/kind.js';
import { restoreLocks } from './locks.js';
import { restoreOwners } from './owner.js';
import { restoreInodeOwners } from './inode-owner.js';
import { REOPENERS } from './registry.js';
import type { EntryOf, FdEntry, FilesState } from './schema.js';
import { TargetFds } from './target.js';

function describe(e: FdEntry): string {
  switch (e.kind) {
    case 'inherit':
      return e.link;
    case 'dup':
      return `dup of fd ${e.of}`;
    case 'pipe':
      return `pipe:[${e.ino}]`;
    case 'unix':
      return `socket:[${e.ino}]`;
    case 'inet': return `${e.protocol === 6 ? 'TCP' : 'UDP'} socket`;
    case 'netlink': return `netlink socket (protocol ${e.protocol})`;
    case 'ipsock': return `IP socket (type ${e.type}, protocol ${e.protocol})`;
    case 'packet': return `packet socket (interface ${e.bound.ifindex})`;
    case 'memfd':
      return `/memfd:${e.obj.name ?? ''}`;
    case 'eventfd':
    case 'timerfd':
    case 'signalfd':
      return `anon_inode:[${e.kind}]`;
    case 'epoll':
      return 'anon_inode:[eventpoll]';
    case 'tty':
      return e.end === 'master' ? `pty master ${e.pty.index}` : `/dev/pts/${e.pty.index}`;
    case 'devtty':
      return '/dev/tty';
    case 'inotify':
      return 'anon_inode:inotify';
    case 'fanotify':
      return 'anon_inode:[fanotify]';
    case 'pidfd':
      return `pidfd of ${e.thread ? 'thread' : 'process'} ${e.pid}`;
    case 'mqueue':
      return `message queue ${e.name === undefined ? `inode ${e.ino} (unlinked)` : `/${e.name}`}`;
    default:
      return e.path;
  }
}

/** Puts one entry in place; true when this process opened its description (not taken from another). */
function reopen(rc: KindRestoreContext, e: EntryOf<ReopenKind>): boolean {
  const to = { fd: e.fd, cloexec: isCloexec(e.flags) };
  const key = e.desc === undefined ? undefined : `desc:${e.desc}`;
  const known = key === undefined ? undefined : rc.ctx.shared.get(key);
  if (known !== undefined) {
    rc.target.install(known, to);
    return false;
  }
  const reopener = REOPENERS[e.kind] as Reopener<ReopenKind>;
  if (reopener.at === 'local') {
    // What ckpt itself opens, creates or binds for the process, it does with the
    // process's credentials (process/fscreds.ts). Not around target reopeners: their
    // injected calls need ckpt's CAP_SYS_PTRACE once the target changed its fsuid.
    const local = locallyAs(rc.ctx.openAs, () => reopener.open(rc, e));
    try {
      rc.target.install(local, to);
    } finally {
      if (key !== undefined) rc.ctx.shared.set(key, local);
      else closeFd(local);
    }
    return true;
  }
  const tmp = reopener.open(rc, e);
  rc.target.place(tmp, to);
  if (reopener.seekable(e) && 'pos' in e) rc.target.seek(e.fd, e.pos);
  // Later processes of the tree on this description take a copy of ours.
  if (key !== undefined) rc.ctx.shared.set(key, grabFd(rc.ctx.pid, e.fd));
  return true;
}

/**
 * A new local fd of a file passed in a unix message: the description a process of the
 * tree holds when it was shared (or kept for the processes restored after), else opened
 * from its entry, in the restorer or in this process and taken from it. Pipe objects
 * come from the whole tree's states: the message may be anywhere.
 */
function passedFd(rc: KindRestoreContext, e: FdEntry): number {
  if (e.kind === 'dup' || e.kind === 'inherit' || e.kind === 'unix') {
    throw restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: `a passed file cannot be a ${e.kind} entry here` });
  }
  const key = e.desc === undefined ? undefined : `desc:${e.desc}`;
  const known = key === undefined ? undefined : rc.ctx.shared.get(key);
  if (known !== undefined) return fcntl(known, F.DUPFD_CLOEXEC, 0);
  const states = (rc.ctx.treeStates?.('files') ?? []) as FilesState[];
  const tree: KindRestoreContext = { ...rc, pipes: new Map([...states.flatMap((s) => s.pipes ?? []).map((p) => [p.id, p] as const), ...rc.pipes]) };
  const reopener = REOPENERS[e.kind] as Reopener<ReopenKind>;
  let local: number;
  if (reopener.at === 'local') {
    local = locallyAs(rc.ctx.openAs, () => reopener.open(tree, e));
  } else {
    const tmp = reopener.open(tree, e);
    try {
      if (reopener.seekable(e) && 'pos' in e) rc.target.seek(tmp, e.pos);
      local = grabFd(rc.ctx.pid, tmp);
    } finally {
      rc.target.closeAll([tmp]);
    }
  }
  if (key !== undefined) rc.ctx.shared.set(key, fcntl(local, F.DUPFD_CLOEXEC, 0));
  return local;
}

/** Whether the fd is close-on-exec, whatever the entry's kind. */
const cloexecOf = (e: FdEntry) => ('flags' in e ? isCloexec(e.flags) : (e.cloexec ?? false));

/** Puts one entry in place; true when this process opened its description. */
function restoreEntry(rc: KindRestoreContext, e: FdEntry): boolean {
  // What goes there is decided first (--inherit-fd, --shell-job); it is put in place as any local fd.
  const given = inheritedFd(rc.ctx, e) ?? (e.kind === 'inherit' ? stdioSource(rc.ctx, e) : undefined);
  if (given !== undefined) {
    rc.target.install(given, { fd: e.fd, cloexec: cloexecOf(e) });
    return false;
  }
  switch (e.kind) {
    case 'inherit':
      return false; // stdioSource gave an fd or threw
    case 'dup':
      rc.target.dup(e.of, { fd: e.fd, cloexec: e.cloexec });
      return false;
    default:
      return reopen(rc, e);
  }
}

export function restoreFiles(ctx: RestoreContext, state: FilesState): void {
  const saved = new Set(state.fds.map((e) => e.fd));
  const rc: KindRestoreContext = {
    ctx,
    target: new TargetFds(ctx.remote, state.fds.reduce((m, e) => Math.max(m, e.fd), 2)),
    pipes: new Map((state.pipes ?? []).map((p) => [p.id, p])),
    unix: new Map((state.unix ?? []).map((u) => [u.ino, u])),
    fds: state.fds,
    passedFd: (e) => passedFd(rc, e),
  };
  const current = listFds(ctx.pid);
  // Saved numbers that are open now get replaced atomically by dup3; the rest must go.
  rc.target.closeAll(current.filter((fd) => !saved.has(fd)));
  const opened = new Set<number>();
  for (const e of state.fds) {
    try {
      if (restoreEntry(rc, e)) opened.add(e.fd);
    } catch (err) {
      if (!(err instanceof SysError)) throw err;
      // EACCES/EPERM: the process (whose credentials open its files, process/fscreds.ts) may not have it.
      const code = err.errnoName === 'EACCES' || err.errnoName === 'EPERM' ? 'PERMISSION' : 'SYSCALL';
      throw restoreError(ctx, { fd: e.fd, code, reason: `${err.syscall} of ${describe(e)} failed with ${err.errnoName}`, cause: err });
    }
  }
  restoreInodeOwners(rc, state.fds);
  // Epoll watches name the target's own fd numbers: added once all of them are in place.
  restoreEpollWatches(rc, state.fds);
  // Any close of a queue fd by its owner drops its mq_notify registration: made once all are in place.
  restoreMqueueNotify(rc, state.fds);
  // Last: closing any fd of a file drops the process's POSIX locks on it.
  restoreLocks(rc, { locks: state.locks ?? [], opened });
  // After the leases, which make the caller the owner.
  restoreOwners(rc, { fds: state.fds, opened });
  // On failure the process is killed anyway; only a finished table must not keep our pidfd.
  rc.target.dispose();
}
