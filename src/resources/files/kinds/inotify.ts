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
import { closeSync, fstatSync, lstatSync, mkdtempSync, openSync, readlinkSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFdinfo, readMountinfo } from '../../../proc/index.js';
import {
  closeFd, F, fcntl, FIONREAD, IN, inotifyAddWatch, inotifyInit1, inotifyRmWatch, ioctlInt, isErrno, openByHandle, pidfdGetfd, pidfdOpen, readFd,
} from '../../../sys/index.js';
import { DELETED_SUFFIX, major, minor, type FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { EntryOf, InotifyWatch } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type LocalReopener } from './kind.js';

// "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x" then, when the fs gives one, the handle.
const WATCH = /^inotify wd:([0-9a-f]+) ino:([0-9a-f]+) sdev:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:([0-9a-f]+)(?: fhandle-bytes:([0-9a-f]+) fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]+))?/;
const IN_DONT_FOLLOW = 0x02000000;
const IN_DELETE_SELF = 0x400;
/** Watch numbers above this would take too many burns to reach at restore (two syscalls each). */
export const MAX_WD = 1 << 20;

interface RawWatch {
  wd: number;
  ino: number;
  /** The kernel's dev_t: major << 20 | minor. */
  sdev: number;
  mask: number;
  handle?: { type: number; bytes: Buffer };
}

function parseWatch(f: FdFacts, line: string): RawWatch {
  const m = WATCH.exec(line);
  if (!m) throw dumpError(f, { code: 'UNSUPPORTED', reason: `cannot read the inotify watch "${line}"` });
  const w: RawWatch = { wd: parseInt(m[1]!, 16), ino: parseInt(m[2]!, 16), sdev: parseInt(m[3]!, 16), mask: parseInt(m[4]!, 16) };
  if (parseInt(m[5]!, 16) !== 0) throw dumpError(f, { code: 'UNSUPPORTED', reason: `its inotify watch ${w.wd} has an ignored mask (${line})` });
  if (m[8] !== undefined) w.handle = { type: parseInt(m[7]!, 16), bytes: Buffer.from(m[8], 'hex') };
  return w;
}

/** A path that leads to the watched inode now, found through its file handle; undefined with why when none does. */
function pathOfWatch(w: RawWatch): { path?: string; why: string } {
  if (!w.handle) return { why: 'its file system gives no file handle to find it by' };
  const dev = { major: w.sdev >>> 20, minor: w.sdev & 0xfffff };
  // Mounts of the whole file system first: a path found through a bind mount of a subtree may not reach the file.
  const mounts = readMountinfo(process.pid)
    .filter((m) => m.major === dev.major && m.minor === dev.minor)
    .sort((a, b) => Number(b.root === '/') - Number(a.root === '/'));
  if (mounts.length === 0) return { why: `its file system (device ${dev.major}:${dev.minor}) is not mounted where ckpt can see it` };
  let why = 'no path leads to it';
  for (const m of mounts) {
    let mountFd: number;
    try {
      mountFd = openSync(m.mountPoint, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
    } catch {
      continue;
    }
    let local: number;
    try {
      local = openByHandle(mountFd, { ...w.handle, flags: O.PATH | O.CLOEXEC });
    } catch (e) {
      if (isErrno(e, 'ESTALE') || isErrno(e, 'ENOENT')) return { why: 'it no longer exists' };
      why = `open_by_handle_at failed (${(e as Error).message})`;
      continue;
    } finally {
      closeSync(mountFd);
    }
    try {
      const link = readlinkSync(`/proc/self/fd/${local}`);
      const st = fstatSync(local);
      if (link.endsWith(DELETED_SUFFIX) || st.nlink === 0) return { why: `it is deleted (${link})` };
      // lstat: the watched inode may be a symlink itself (IN_DONT_FOLLOW).
      const back = lstatSync(link, { throwIfNoEntry: false });
      if (back && back.ino === st.ino && back.dev === st.dev && st.ino === w.ino && major(st.dev) === dev.major && minor(st.dev) === dev.minor) {
        return { path: link, why: '' };
      }
      why = `its path ${link} leads to another file`;
    } finally {
      closeSync(local);
    }
  }
  return { why };
}

/** Bytes of events queued on the instance and not read yet (FIONREAD on a copy of the fd). */
function queuedBytes(f: FdFacts): number {
  const pidfd = pidfdOpen(f.pid);
  try {
    const copy = pidfdGetfd(pidfd, f.fd, { pid: f.pid });
    try {
      return ioctlInt(copy, FIONREAD);
    } finally {
      closeFd(copy);
    }
  } finally {
    closeFd(pidfd);
  }
}

export function dumpInotify(_dc: KindDumpContext, f: FdFacts): EntryOf<'inotify'> {
  const raw = readFdinfo(f.pid, f.fd).lines.filter((l) => l.startsWith('inotify ')).map((l) => parseWatch(f, l));
  const watches: InotifyWatch[] = [];
  for (const w of raw.sort((a, b) => a.wd - b.wd)) {
    const what = `its inotify watch ${w.wd} (mask 0x${w.mask.toString(16)}, inode ${w.ino})`;
    if (w.wd > MAX_WD) throw dumpError(f, { code: 'UNSUPPORTED', reason: `${what} has a number above ${MAX_WD}, which restore cannot reach` });
    const found = pathOfWatch(w);
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
function drain(fd: number): void {
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
