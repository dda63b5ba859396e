/**
 * What inotify and fanotify marks have in common: fdinfo names the watched inode by
 * inode number, the kernel's dev_t of its file system and a file handle; the dump needs
 * a path to it, and the count of events queued and not read yet.
 */
import { closeSync, fstatSync, lstatSync, openSync, readlinkSync } from 'node:fs';
import { readMountinfo } from '../../../proc/index.js';
import { closeFd, FIONREAD, ioctlInt, isErrno, openByHandle, pidfdGetfd, pidfdOpen } from '../../../sys/index.js';
import { DELETED_SUFFIX, major, minor, type FdFacts } from '../facts.js';
import { O } from '../flags.js';

export interface WatchedInode {
  ino: number;
  /** The kernel's dev_t: major << 20 | minor. */
  sdev: number;
  handle?: { type: number; bytes: Buffer };
}

/** The mounts of the file system with kernel dev_t `sdev`, those of its root first. */
export function mountsOf(sdev: number): ReturnType<typeof readMountinfo> {
  const dev = { major: sdev >>> 20, minor: sdev & 0xfffff };
  // Mounts of the whole file system first: a path found through a bind mount of a subtree may not reach the file.
  return readMountinfo(process.pid)
    .filter((m) => m.major === dev.major && m.minor === dev.minor)
    .sort((a, b) => Number(b.root === '/') - Number(a.root === '/'));
}

/** A path that leads to the watched inode now, found through its file handle; undefined with why when none does. */
export function pathOfInode(w: WatchedInode): { path?: string; why: string } {
  if (!w.handle) return { why: 'its file system gives no file handle to find it by' };
  const dev = { major: w.sdev >>> 20, minor: w.sdev & 0xfffff };
  const mounts = mountsOf(w.sdev);
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
      // lstat: the watched inode may be a symlink itself (IN_DONT_FOLLOW, FAN_MARK_DONT_FOLLOW).
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
export function queuedBytes(f: FdFacts): number {
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
