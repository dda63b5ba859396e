/**
 * Unix sockets as fd entries: the socket itself (how it is connected, its name, its
 * queue) is a saved object (unix-dump.ts), and every socket of the tree is made at once
 * in the restorer the first time a process needs one (unix-build.ts). Each fd then
 * takes a copy of its socket, handed to its process with pidfd_getfd.
 */
import { F, fcntl } from '../../../sys/index.js';
import { O } from '../flags.js';
import type { FdEntry, FilesState, UnixObject } from '../schema.js';
import { restoreError, type KindRestoreContext, type LocalReopener } from './kind.js';
import { buildUnixSockets } from './unix-build.js';

export { dumpUnix, socketIno } from './unix-dump.js';

/** The restores whose sockets are made (keyed by their shared table). */
const built = new WeakSet<object>();

/** Every saved unix socket of the tree and the files in flight in their queues (this process's alone when the tree is not known). */
function treeSockets(rc: KindRestoreContext): { all: Map<number, UnixObject>; passed: Map<string, FdEntry[]> } {
  const states = (rc.ctx.treeStates?.('files') ?? []) as FilesState[];
  const all = new Map<number, UnixObject>();
  const passed = new Map<string, FdEntry[]>();
  for (const s of states) {
    for (const u of s.unix ?? []) all.set(u.ino, u);
    for (const p of s.passed ?? []) passed.set(`${p.ino}:${p.msg}`, p.fds);
  }
  for (const [ino, u] of rc.unix) all.set(ino, u);
  return { all, passed };
}

export const unixReopener: LocalReopener<'unix'> = {
  at: 'local',
  open(rc, e) {
    if (!rc.unix.has(e.ino)) throw restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: `its socket ${e.ino} is not saved` });
    if (!built.has(rc.ctx.shared)) {
      const open = (entry: FdEntry) => {
        if (!rc.passedFd) throw restoreError(rc, { fd: e.fd, code: 'INTERNAL', reason: 'files in flight cannot be reopened here' });
        return rc.passedFd(entry);
      };
      buildUnixSockets(rc.ctx, { ...treeSockets(rc), open });
      built.add(rc.ctx.shared);
    }
    const mine = rc.ctx.shared.get(`unix:${e.ino}`);
    if (mine === undefined) throw restoreError(rc, { fd: e.fd, code: 'INTERNAL', reason: `its socket ${e.ino} was not made` });
    const fd = fcntl(mine, F.DUPFD_CLOEXEC, 0);
    // A socket has one open file description: its status flags are set once, here.
    const fl = fcntl(fd, F.GETFL);
    fcntl(fd, F.SETFL, (e.flags & O.NONBLOCK) ? fl | O.NONBLOCK : fl & ~O.NONBLOCK);
    return fd;
  },
};
