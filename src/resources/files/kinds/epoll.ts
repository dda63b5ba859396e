/**
 * epoll instances (`anon_inode:[eventpoll]`). fdinfo lists one "tfd: N events: X
 * data: Y …" line per watch, where N is the fd number the watch was added under: the
 * kernel keys watches by (file, fd number), so a watch can only be re-added by the
 * target itself, naming its file as fd N. Restore creates an empty instance in the
 * restorer, installs it like any fd, and once every fd of the process is in place
 * (restoreEpollWatches, called by restore.ts) adds each watch by an injected
 * epoll_ctl(EPOLL_CTL_ADD) with its saved events and data.
 *
 * kcmp(KCMP_EPOLL_TFD) tells which file a watch is on. A watch whose fd N was closed
 * (or now names another file) lives on while its file does: if another fd of this
 * process (`via`) holds that file, restore puts it at number N for the epoll_ctl (the
 * fd there, if any, moved aside and back), then closes it again. If a process of the
 * tree that shares this epoll holds the file as its fd N, that process's dump saves the
 * watch. Otherwise the dump refuses, naming the watch.
 *
 * `events` is passed through as saved (EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE,
 * EPOLLWAKEUP included). Readiness is re-evaluated on add, so an edge-triggered watch
 * whose edge was already reported reports it once more. A one-shot watch that already
 * fired shows only its flag bits, a state no epoll_ctl makes (the kernel adds
 * EPOLLERR|EPOLLHUP to every add and modify): it is added first, for every poll
 * event, and fired by an injected epoll_wait, as it was. Its file must be ready for
 * some event then: an empty pipe is given one byte for the moment of the firing (taken
 * back at once); any other file ready for nothing (a listener with no connection
 * waiting, a timerfd not expired) is refused at dump, as it could only come back armed.
 */
import { closeSync, openSync, readlinkSync, readSync, writeSync } from 'node:fs';
import { listFds, readFdinfo } from '../../../proc/index.js';
import { encodeEpollEvent, EPOLL_CLOEXEC, EPOLL_CTL, epollCreate1, kcmpEpollTfd } from '../../../sys/anonfd.js';
import { closeFd, errnoName, ERRNO, F, fcntl, NR } from '../../../sys/index.js';
import { pollNow } from '../../../sys/inet.js';
import { ioctl } from '../../../sys/ioctl.js';
import { addressOf } from '../../../sys/native.js';
import { grabFd } from '../../transfer.js';
import { fdPath, type FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { EntryOf, EpollWatch, FdEntry } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type KindRestoreContext, type LocalReopener } from './kind.js';

// "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x"
const WATCH = /^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)\b/i;

interface WatchSlot {
  efd: number;
  tfd: number;
  toff: number;
}

/** Another fd of process `pid` on the watched file, if any. */
function otherFdOnFile(pid: number, slot: WatchSlot): number | undefined {
  return listFds(pid).find((fd) => fd !== slot.tfd && kcmpEpollTfd(pid, { fd, ...slot }) === 0);
}

/** Whether another process of the tree shares this epoll and holds the watched file as its fd `tfd` (its dump saves the watch). */
function savedByAnother(dc: KindDumpContext, f: FdFacts, slot: WatchSlot): boolean {
  const desc = dc.ctx.descriptionOf?.(f.fd);
  if (desc === undefined || !dc.ctx.treeDescriptions) return false;
  for (const [pid, fds] of dc.ctx.treeDescriptions) {
    if (pid === f.pid || ![...fds.values()].includes(desc)) continue;
    if (kcmpEpollTfd(f.pid, { ...slot, fd: slot.tfd, fdPid: pid }) === 0) return true;
  }
  return false;
}

export function dumpEpoll(dc: KindDumpContext, f: FdFacts): EntryOf<'epoll'> {
  const watches: EpollWatch[] = [];
  // kcmp names a watch by (fd number, index among the watches under that number).
  const underNumber = new Map<number, number>();
  for (const line of readFdinfo(f.pid, f.fd).lines) {
    if (!line.startsWith('tfd:')) continue;
    const m = WATCH.exec(line);
    if (!m) throw dumpError(f, { code: 'UNSUPPORTED', reason: `cannot read the epoll watch "${line}"` });
    const tfd = Number(m[1]);
    const toff = underNumber.get(tfd) ?? 0;
    underNumber.set(tfd, toff + 1);
    const watch: EpollWatch = { tfd, events: parseInt(m[2]!, 16), data: BigInt(`0x${m[3]}`) };
    const slot = { efd: f.fd, tfd, toff };
    if (kcmpEpollTfd(f.pid, { fd: tfd, ...slot }) !== 0) {
      const via = otherFdOnFile(f.pid, slot);
      if (via === undefined) {
        if (savedByAnother(dc, f, slot)) continue;
        throw dumpError(f, {
          code: 'UNSUPPORTED',
          reason: `its epoll watch on fd ${tfd} (events 0x${watch.events.toString(16)}) is on a file that fd ${tfd} no longer refers to, and no fd of this process holds that file`,
        });
      }
      watch.via = via;
    }
    if (isFired(watch)) checkCanFire(f, { watch, holder: watch.via ?? tfd });
    watches.push(watch);
  }
  const busyPoll = readBusyPoll(f);
  return { kind: 'epoll', fd: f.fd, flags: f.flags, watches, ...(busyPoll ? { busyPoll } : {}) };
}

/** struct epoll_params: busy_poll_usecs (u32), busy_poll_budget (u16), prefer_busy_poll (u8), a pad byte. */
const EPIOCSPARAMS = 0x40088a01;
const EPIOCGPARAMS = 0x80088a02;

/** The instance's busy-poll parameters (EPIOCGPARAMS on a copy), or undefined when none is set or the kernel has none. */
function readBusyPoll(f: FdFacts): EntryOf<'epoll'>['busyPoll'] {
  const local = grabFd(f.pid, f.fd);
  const b = Buffer.alloc(8);
  try {
    ioctl(local, EPIOCGPARAMS, addressOf(b));
  } catch {
    return undefined; // before 6.9, or no CONFIG_NET_RX_BUSY_POLL: nothing can be set either
  } finally {
    closeFd(local);
  }
  const p = { usecs: b.readUInt32LE(0), budget: b.readUInt16LE(4), prefer: b.readUInt8(6) };
  return p.usecs || p.budget || p.prefer ? p : undefined;
}

/** Whether fd `holder` of process `pid` is the read end of a pipe (not a FIFO: a writer opened on one could give its readers an EPOLLHUP later). */
function isPipeReadEnd(pid: number, holder: number, local: number): boolean {
  return readlinkSync(fdPath(pid, holder)).startsWith('pipe:') && (fcntl(local, F.GETFL) & O.ACCMODE) === O.RDONLY;
}

/**
 * A fired one-shot watch comes back only if its file is ready for some event at
 * restore (or is an empty pipe, which the restore makes ready for a moment): its state
 * then is its state now, frozen. Refused otherwise, naming the watch.
 */
function checkCanFire(f: FdFacts, args: { watch: EpollWatch; holder: number }): void {
  const local = grabFd(f.pid, args.holder);
  try {
    if (pollNow(local, ANY_EVENT) !== 0 || isPipeReadEnd(f.pid, args.holder, local)) return;
  } finally {
    closeFd(local);
  }
  throw dumpError(f, {
    code: 'UNSUPPORTED',
    reason: `its one-shot epoll watch on fd ${args.watch.tfd} fired and is disarmed, and its file is ready for no event, so the restore cannot fire it again (it would come back armed for EPOLLERR/EPOLLHUP)`,
  });
}

export const epollReopener: LocalReopener<'epoll'> = {
  at: 'local',
  open(_rc, e) {
    const fd = epollCreate1(EPOLL_CLOEXEC);
    try {
      if (e.flags & O.NONBLOCK) fcntl(fd, F.SETFL, O.NONBLOCK);
      if (e.busyPoll) {
        const b = Buffer.alloc(8);
        b.writeUInt32LE(e.busyPoll.usecs, 0);
        b.writeUInt16LE(e.busyPoll.budget, 4);
        b.writeUInt8(e.busyPoll.prefer, 6);
        ioctl(fd, EPIOCSPARAMS, addressOf(b));
      }
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return fd;
  },
};

/** The flag bits a fired one-shot watch keeps (EP_PRIVATE_BITS): EPOLLEXCLUSIVE, EPOLLWAKEUP, EPOLLONESHOT, EPOLLET. */
const EP_PRIVATE_BITS = 0x10000000 | 0x20000000 | 0x40000000 | 0x80000000;
const EPOLLONESHOT = 0x40000000;
/** EPOLLIN, PRI, OUT, RDNORM, RDBAND, WRNORM, WRBAND, MSG, RDHUP: whatever the file is ready for fires it. */
const ANY_EVENT = 0x1 | 0x2 | 0x4 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000;
const EPOLL_EVENT_SIZE = 12;

/** A one-shot watch that fired since it was last armed: its events are its flag bits alone. */
function isFired(w: EpollWatch): boolean {
  return (w.events & EPOLLONESHOT) !== 0 && (w.events & ~EP_PRIVATE_BITS) === 0;
}

/**
 * Fires the one-shot watch just added for every event, by an epoll_wait in the target
 * that collects it (the kernel then leaves it its flag bits alone, as saved). Not
 * ready for anything: set back to its saved events (armed for EPOLLERR/EPOLLHUP).
 */
function fire(rc: KindRestoreContext, args: { efd: number; watch: EpollWatch }): void {
  const remote = rc.ctx.remote;
  const w = args.watch;
  const buf = remote.scratch(EPOLL_EVENT_SIZE);
  const wait = () => remote.call(NR.epoll_wait, [args.efd, buf, 1, 0], 'epoll_wait');
  let n = wait();
  if (n === 0n) n = withByteInPipe(rc, { holder: w.via ?? w.tfd }, wait) ?? 0n;
  if (n === 1n) {
    const got = remote.read(buf, EPOLL_EVENT_SIZE).readBigUInt64LE(4);
    if (got === w.data) return;
    // Only a watch of a shared epoll added by a process restored earlier can be ready here.
    throw restoreError(rc, { fd: args.efd, code: 'UNSUPPORTED', reason: `firing its one-shot watch on fd ${w.tfd} collected the event of another watch (data 0x${got.toString(16)})` });
  }
  // The dump checked that the file would be ready: it is not the saved one.
  throw restoreError(rc, { fd: args.efd, code: 'FILE_CHANGED', reason: `its fired one-shot watch on fd ${w.tfd} cannot be fired again: its file is ready for no event` });
}

/**
 * Runs `wait` with one byte in the empty pipe whose read end the target holds as fd
 * `holder` (written and read back through new ends the restorer opens by /proc), so
 * that a one-shot watch on it can fire; undefined when `holder` is no pipe.
 */
function withByteInPipe(rc: KindRestoreContext, args: { holder: number }, wait: () => bigint): bigint | undefined {
  const path = fdPath(rc.ctx.pid, args.holder);
  if (!readlinkSync(path).startsWith('pipe:')) return undefined;
  const writer = openSync(path, O.WRONLY | O.NONBLOCK | O.CLOEXEC);
  try {
    const reader = openSync(path, O.RDONLY | O.NONBLOCK | O.CLOEXEC);
    try {
      writeSync(writer, Buffer.of(0));
      try {
        return wait();
      } finally {
        readSync(reader, Buffer.alloc(1)); // the pipe was empty: this is the byte
      }
    } finally {
      closeSync(reader);
    }
  } finally {
    closeSync(writer);
  }
}

const F_GETFD = 1;
const F_DUPFD_CLOEXEC = 1030;
const FD_CLOEXEC = 1;

/**
 * Runs `add` with the file of fd `via` at number `tfd` in the target: whatever fd
 * `tfd` is now is moved above `above` and put back after, close-on-exec flag included.
 */
function withFileAt(rc: KindRestoreContext, args: { via: number; tfd: number; above: number }, add: () => bigint): bigint {
  const remote = rc.ctx.remote;
  const fdflags = remote.raw(NR.fcntl, [args.tfd, F_GETFD, 0]);
  const aside = fdflags >= 0n ? Number(remote.call(NR.fcntl, [args.tfd, F_DUPFD_CLOEXEC, args.above + 1], 'fcntl(F_DUPFD_CLOEXEC)')) : undefined;
  remote.call(NR.dup3, [args.via, args.tfd, O.CLOEXEC], 'dup3');
  try {
    return add();
  } finally {
    if (aside === undefined) {
      remote.call(NR.close, [args.tfd], 'close');
    } else {
      remote.call(NR.dup3, [aside, args.tfd, (fdflags & BigInt(FD_CLOEXEC)) !== 0n ? O.CLOEXEC : 0], 'dup3');
      remote.call(NR.close, [aside], 'close');
    }
  }
}

/**
 * Adds the saved watches of every epoll entry of the process, by epoll_ctl injected
 * into the target; call once all its fds are in place, and before the locks (putting a
 * file at a number and closing it again would drop the process's POSIX locks on it).
 * An epoll shared with a process restored earlier already has the watches both
 * processes hold (inherited fds): EEXIST is expected there.
 */
export function restoreEpollWatches(rc: KindRestoreContext, fds: readonly FdEntry[]): void {
  const above = fds.reduce((m, e) => Math.max(m, e.fd), 2);
  for (const e of fds) {
    if (e.kind !== 'epoll') continue;
    // Fired one-shot watches first: the epoll_wait that fires one must find nothing else ready.
    const watches = [...e.watches].sort((a, b) => Number(isFired(b)) - Number(isFired(a)));
    for (const w of watches) {
      const fired = isFired(w);
      const add = () => {
        const addr = rc.ctx.remote.put(encodeEpollEvent(fired ? w.events | ANY_EVENT : w.events, w.data));
        return rc.ctx.remote.raw(NR.epoll_ctl, [e.fd, EPOLL_CTL.ADD, w.tfd, addr]);
      };
      const r = w.via === undefined ? add() : withFileAt(rc, { via: w.via, tfd: w.tfd, above }, add);
      if (r >= 0n && fired) fire(rc, { efd: e.fd, watch: w });
      if (r >= 0n || r === -BigInt(ERRNO.EEXIST!)) continue;
      throw restoreError(rc, {
        fd: e.fd,
        code: 'SYSCALL',
        reason: `epoll_ctl(EPOLL_CTL_ADD) of its watch on fd ${w.tfd} (events 0x${w.events.toString(16)}) failed with ${errnoName(Number(-r))}`,
      });
    }
  }
}
