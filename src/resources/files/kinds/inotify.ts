/**
 * inotify instances (`anon_inode:inotify`). fdinfo lists one line per watch:
 * "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:0 fhandle-bytes:%x
 * fhandle-type:%x f_handle:%s". The mask already carries IN_ONESHOT and IN_EXCL_UNLINK
 * (the mark's flags); IN_DONT_FOLLOW, IN_ONLYDIR and IN_MASK_* only steer the add.
 *
 * Dump: each watched inode's path is found from its file handle (open_by_handle_at on
 * a mount of its file system, then the /proc/self/fd link), and checked to lead back
 * to the same inode; a watch on a deleted file or one no path reaches is refused.
 * There is no way to read queued events without consuming them, so an instance with
 * unread events (FIONREAD on a copy of the fd) is refused, naming how many bytes wait.
 *
 * Restore: a new instance in the restorer; watch numbers are allocated cyclically
 * (idr_alloc_cyclic from the last one given + 1), so each watch gets its old number by
 * first burning the numbers below it on a scratch directory (add, remove), then adding
 * the watch by path with IN_DONT_FOLLOW (the path names the watched inode itself, which
 * may be a symlink). The burns queue IN_IGNORED events: the queue is emptied at the
 * end, as it was at dump. The next number the program gets is one above the highest
 * saved watch (the kernel's cursor is shown nowhere: it may have been higher).
 */
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFdinfo } from '../../../proc/index.js';
import { closeFd, F, fcntl, IN, inotifyAddWatch, inotifyInit1, inotifyRmWatch, isErrno, readFd } from '../../../sys/index.js';
import type { FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { EntryOf, InotifyWatch } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type LocalReopener } from './kind.js';
import { pathOfInode, queuedBytes, type WatchedInode } from './watched.js';

// "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x" then, when the fs gives one, the handle.
const WATCH = /^inotify wd:([0-9a-f]+) ino:([0-9a-f]+) sdev:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:([0-9a-f]+)(?: fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]+))?/;
const IN_DONT_FOLLOW = 0x02000000;
const IN_DELETE_SELF = 0x400;
/** Watch numbers above this would take too many burns to reach at restore (two syscalls each). */
export const MAX_WD = 1 << 20;

interface RawWatch extends WatchedInode {
  wd: number;
  mask: number;
}

function parseWatch(f: FdFacts, line: string): RawWatch {
  const m = WATCH.exec(line);
  if (!m) throw dumpError(f, { code: 'UNSUPPORTED', reason: `cannot read the inotify watch "${line}"` });
  const w: RawWatch = { wd: parseInt(m[1]!, 16), ino: parseInt(m[2]!, 16), sdev: parseInt(m[3]!, 16), mask: parseInt(m[4]!, 16) };
  if (parseInt(m[5]!, 16) !== 0) throw dumpError(f, { code: 'UNSUPPORTED', reason: `its inotify watch ${w.wd} has an ignored mask (${line})` });
  if (m[8] !== undefined) w.handle = { type: parseInt(m[7]!, 16), bytes: Buffer.from(m[8], 'hex') };
  return w;
}

export function dumpInotify(_dc: KindDumpContext, f: FdFacts): EntryOf<'inotify'> {
  const raw = readFdinfo(f.pid, f.fd).lines.filter((l) => l.startsWith('inotify ')).map((l) => parseWatch(f, l));
  const watches: InotifyWatch[] = [];
  for (const w of raw.sort((a, b) => a.wd - b.wd)) {
    const what = `its inotify watch ${w.wd} (mask 0x${w.mask.toString(16)}, inode ${w.ino})`;
    if (w.wd > MAX_WD) throw dumpError(f, { code: 'UNSUPPORTED', reason: `${what} has a number above ${MAX_WD}, which restore cannot reach` });
    const found = pathOfInode(w);
    if (found.path === undefined) throw dumpError(f, { code: 'UNSUPPORTED', reason: `${what} cannot be restored: ${found.why}` });
    watches.push({ wd: w.wd, mask: w.mask, path: found.path });
  }
  const queued = queuedBytes(f);
  if (queued > 0) {
    throw dumpError(f, { code: 'UNSUPPORTED', reason: `its inotify instance has ${queued} bytes of events not read yet, which cannot be saved without consuming them` });
  }
  return { kind: 'inotify', fd: f.fd, flags: f.flags, watches };
}

/** Reads every queued event away (the instance is non-blocking). */
export function drain(fd: number): void {
  const buf = Buffer.alloc(64 * 1024);
  for (;;) {
    try {
      if (readFd(fd, buf) <= 0) return;
    } catch (e) {
      if (isErrno(e, 'EAGAIN')) return;
      throw e;
    }
  }
}

export const inotifyReopener: LocalReopener<'inotify'> = {
  at: 'local',
  open(rc, e) {
    const fd = inotifyInit1(IN.NONBLOCK | IN.CLOEXEC);
    let scratch: string | undefined;
    try {
      let next = 1;
      for (const w of e.watches) {
        if (w.wd > next) scratch ??= mkdtempSync(join(tmpdir(), 'ckpt-inotify-'));
        for (; next < w.wd; next++) inotifyRmWatch(fd, inotifyAddWatch(fd, { path: scratch!, mask: IN_DELETE_SELF }));
        const got = inotifyAddWatch(fd, { path: w.path, mask: w.mask | IN_DONT_FOLLOW });
        if (got !== w.wd) {
          throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `inotify gave watch number ${got} to ${w.path}, not its old ${w.wd}` });
        }
        next = w.wd + 1;
      }
      drain(fd);
      if (!(e.flags & O.NONBLOCK)) fcntl(fd, F.SETFL, 0);
    } catch (err) {
      closeFd(fd);
      throw err;
    } finally {
      if (scratch !== undefined) rmdirSync(scratch);
    }
    return fd;
  },
};
