/**
 * epoll instances (`anon_inode:[eventpoll]`). fdinfo lists one "tfd: N events: X
 * data: Y …" line per watch, where N is the fd number the watch was added under: the
 * kernel keys watches by (file, fd number), so a watch can only be re-added by the
 * target itself, as its own fd N on the same file. Dump keeps the watches that
 * kcmp(KCMP_EPOLL_TFD) confirms are on this process's fd N (a watch whose fd was
 * closed lives on while its file does, but cannot be added back: warned). Restore
 * creates an empty instance in the restorer, installs it like any fd, and once every
 * fd of the process is in place (restoreEpollWatches, called by restore.ts) adds each
 * watch by an injected epoll_ctl(EPOLL_CTL_ADD) with its saved events and data.
 *
 * `events` is passed through as saved (EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE,
 * EPOLLWAKEUP included). Approximations: readiness is re-evaluated on add, so an
 * edge-triggered watch whose edge was already reported reports it once more; a
 * one-shot watch that already fired (events reduced to its flag bits) is re-armed
 * for EPOLLERR/EPOLLHUP, which the kernel always adds.
 */
import { readFdinfo } from '../../../proc/index.js';
import { encodeEpollEvent, EPOLL_CLOEXEC, EPOLL_CTL, epollCreate1, kcmpEpollTfd } from '../../../sys/anonfd.js';
import { closeFd, errnoName, ERRNO, F, fcntl, NR } from '../../../sys/index.js';
import type { FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { EntryOf, EpollWatch, FdEntry } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type KindRestoreContext, type LocalReopener } from './kind.js';

// "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x"
const WATCH = /^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)\b/i;

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
    if (kcmpEpollTfd(f.pid, { fd: tfd, efd: f.fd, tfd, toff }) !== 0) {
      dc.ctx.warn(
        `fd ${f.fd} of process ${f.pid}: its epoll watch on fd ${tfd} is on a file this process no longer has open as fd ${tfd}; ` +
          'it is not restored (unless another dumped process sharing the epoll has it)',
      );
      continue;
    }
    watches.push({ tfd, events: parseInt(m[2]!, 16), data: BigInt(`0x${m[3]}`) });
  }
  return { kind: 'epoll', fd: f.fd, flags: f.flags, watches };
}

export const epollReopener: LocalReopener<'epoll'> = {
  at: 'local',
  open(_rc, e) {
    const fd = epollCreate1(EPOLL_CLOEXEC);
    try {
      if (e.flags & O.NONBLOCK) fcntl(fd, F.SETFL, O.NONBLOCK);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return fd;
  },
};

/**
 * Adds the saved watches of every epoll entry of the process, by epoll_ctl injected
 * into the target; call once all its fds are in place. An epoll shared with a process
 * restored earlier already has the watches both processes hold (inherited fds): EEXIST
 * is expected there.
 */
export function restoreEpollWatches(rc: KindRestoreContext, fds: readonly FdEntry[]): void {
  for (const e of fds) {
    if (e.kind !== 'epoll') continue;
    for (const w of e.watches) {
      const addr = rc.ctx.remote.put(encodeEpollEvent(w.events, w.data));
      const r = rc.ctx.remote.raw(NR.epoll_ctl, [e.fd, EPOLL_CTL.ADD, w.tfd, addr]);
      if (r >= 0n || r === -BigInt(ERRNO.EEXIST!)) continue;
      throw restoreError(rc, {
        fd: e.fd,
        code: 'SYSCALL',
        reason: `epoll_ctl(EPOLL_CTL_ADD) of its watch on fd ${w.tfd} (events 0x${w.events.toString(16)}) failed with ${errnoName(Number(-r))}`,
      });
    }
  }
}
