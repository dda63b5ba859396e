/**
 * pidfds (`anon_inode:[pidfd]`). fdinfo gives "Pid:" — the process (or, for a
 * PIDFD_THREAD pidfd, the thread) it refers to, in ckpt's pid namespace: -1 once it
 * has exited and been reaped, 0 when it lives outside that namespace. The flags carry
 * PIDFD_NONBLOCK (O_NONBLOCK) and PIDFD_THREAD (O_EXCL).
 *
 * A pidfd is restored with pidfd_open of the same PID (restored processes keep their
 * PIDs), so it must name a process of the dumped tree: one outside is refused (its PID
 * could be anyone's at restore), and so is a reaped one (no pidfd can be made again for
 * a PID nobody holds; a zombie of the tree is made again as a zombie, so its pidfd is
 * made while it still exists). Every process and thread of the tree exists before any
 * fd table is rebuilt (restore/process.ts: files come once the whole tree is created),
 * so a pidfd of a sibling, a nephew or another process's thread is made like one of a
 * child; a zombie is still alive then.
 */
import { readFdinfo, readStatus } from '../../../proc/index.js';
import { isErrno, pidfdOpen } from '../../../sys/index.js';
import type { FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { EntryOf } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type LocalReopener } from './kind.js';

/** PIDFD_THREAD: the pidfd refers to one thread, not its thread group. */
const PIDFD_THREAD = O.EXCL;

export function dumpPidfd(dc: KindDumpContext, f: FdFacts): EntryOf<'pidfd'> {
  const raw = readFdinfo(f.pid, f.fd).extra['Pid'];
  const pid = raw !== undefined && /^-?\d+$/.test(raw) ? Number(raw) : undefined;
  const refuse = (why: string) => dumpError(f, { code: 'UNSUPPORTED', reason: `its pidfd ${why}` });
  if (pid === undefined) throw refuse(`has no readable "Pid" in its fdinfo (${JSON.stringify(raw ?? null)})`);
  if (pid === -1) throw refuse('refers to a process that has exited and been reaped: no pidfd can be made again for it');
  if (pid === 0) throw refuse("refers to a process outside ckpt's pid namespace");
  const thread = (f.flags & PIDFD_THREAD) !== 0;
  // A thread's pidfd names its TID: the thread belongs to the tree when its process does.
  let tgid = pid;
  if (thread) {
    try {
      tgid = readStatus(pid).tgid;
    } catch {
      throw refuse(`refers to thread ${pid}, which is gone`);
    }
  }
  const inTree = dc.ctx.inTree ? dc.ctx.inTree(tgid) : tgid === f.pid;
  if (!inTree) throw refuse(`refers to ${thread ? `thread ${pid} of process ${tgid}` : `process ${pid}`}, which is not in the dumped tree`);
  return { kind: 'pidfd', fd: f.fd, flags: f.flags, pid, thread };
}

export const pidfdReopener: LocalReopener<'pidfd'> = {
  at: 'local',
  open(rc, e) {
    try {
      return pidfdOpen(e.pid, (e.flags & O.NONBLOCK) | (e.thread ? PIDFD_THREAD : 0));
    } catch (err) {
      if (!isErrno(err, 'ESRCH')) throw err;
      const what = e.thread ? `thread ${e.pid}` : `process ${e.pid}`;
      throw restoreError(rc, { fd: e.fd, code: 'UNSUPPORTED', reason: `its pidfd names ${what}, which was not restored`, cause: err });
    }
  },
};
