/**
 * Regular files and directories that still have their name: reopened by path. A file
 * whose name this fd used was removed while the file keeps another name (a hard link)
 * is not deleted: it is reopened by its file handle (handle.ts).
 */
import { constants, lstatSync, statSync, type Stats } from 'node:fs';
import { bootId } from '../../../proc/index.js';
import { fdPath, withoutDeletedSuffix, type FdFacts } from '../facts.js';
import { isPathOnly, reopenFlags } from '../flags.js';
import type { EntryOf, FileIdentity, SavedHandle } from '../schema.js';
import { dumpHandle, relinkHandle } from './handle.js';
import { restoreError, savedPath, type KindDumpContext, type KindRestoreContext, type TargetReopener } from './kind.js';

export function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/** /proc and /sys make their inodes anew (a restored /proc/PID/status is a new inode of the same file). */
const isVirtual = (path: string) => /^\/(proc|sys)\//.test(path);

/** Which inode the fd's path led to, for the restore to find the same one there; none for /proc and /sys. */
export function identityOf(f: FdFacts, path: string): FileIdentity | undefined {
  if (isVirtual(path)) return undefined;
  const st = statSync(fdPath(f.pid, f.fd), { bigint: true });
  return { dev: Number(st.dev), ino: Number(st.ino), btime: st.birthtimeNs, boot: bootId() };
}

/**
 * Refuses a path that now leads to another inode of the same file system than at dump
 * (the file was replaced: a new file renamed over it, logrotate's create, an editor's
 * save, or removed and made again; its old inode may live on under another name).
 * Opening the new file would give the program other data under the same fd, silently.
 * On another file system, or after another boot (a migration to another host, whose
 * disk may have the same device number), the inode cannot be compared.
 */
export function checkIdentity(rc: KindRestoreContext, e: { fd: number; path: string; identity?: FileIdentity | undefined }): void {
  const want = e.identity;
  if (!want || (want.boot !== undefined && want.boot !== bootId())) return;
  // lstat: the path itself (a symbolic link opened with O_PATH|O_NOFOLLOW is its own inode; reopened files were checked not to be links).
  const st = lstatSync(e.path, { bigint: true });
  if (Number(st.dev) !== want.dev) return;
  const sameBirth = want.btime === 0n || st.birthtimeNs === 0n || st.birthtimeNs === want.btime;
  if (Number(st.ino) === want.ino && sameBirth) return;
  const was = Number(st.ino) === want.ino ? `inode ${st.ino} made again (born ${st.birthtimeNs} ns, was ${want.btime})` : `inode ${st.ino}, was ${want.ino}`;
  throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} is another file since the dump (${was})` });
}

export function dumpRegular(_dc: KindDumpContext, f: FdFacts): EntryOf<'reg'> {
  const path = savedPath(f, f.link);
  const identity = identityOf(f, path);
  return { kind: 'reg', fd: f.fd, flags: f.flags, pos: f.pos, path, size: BigInt(f.stat.size), ...(identity && { identity }) };
}

/** A file unlinked from this fd's name but linked elsewhere: saved as its file handle. */
export function dumpOtherLink(_dc: KindDumpContext, f: FdFacts): EntryOf<'reg'> {
  const path = savedPath(f, withoutDeletedSuffix(f.link));
  return { kind: 'reg', fd: f.fd, flags: f.flags, pos: f.pos, path, size: BigInt(f.stat.size), handle: dumpHandle(f) };
}

/** The file of a saved handle, linked under its old name again, opened there by the target, unlinked. */
function openByHandleIn(rc: KindRestoreContext, e: EntryOf<'reg'> & { handle: SavedHandle }): number {
  const name = relinkHandle(rc, { ...e, type: constants.S_IFREG });
  try {
    return rc.target.open(name.path, reopenFlags(e.flags, { directory: false }));
  } finally {
    name.remove();
  }
}

export function dumpDirectory(_dc: KindDumpContext, f: FdFacts): EntryOf<'dir'> {
  const path = savedPath(f, f.link);
  const identity = identityOf(f, path);
  return { kind: 'dir', fd: f.fd, flags: f.flags, pos: f.pos, path, ...(identity && { identity }) };
}

export const regularReopener: TargetReopener<'reg'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'reg'>): number {
    if (e.handle) return openByHandleIn(rc, { ...e, handle: e.handle });
    const st = lstatOrNull(e.path);
    if (!st) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} no longer exists` });
    if (!st.isFile()) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} is no longer a regular file` });
    checkIdentity(rc, e);
    // Legal (a log truncated by logrotate, an O_APPEND writer) but worth knowing: reads will see EOF.
    // Not for /proc and /sys files, whose size is always 0 (top keeps /proc/stat open and rereads it).
    if (BigInt(st.size) < e.pos && !isVirtual(e.path)) {
      rc.ctx.warn(`fd ${e.fd} of process ${rc.ctx.pid}: ${e.path} is now ${st.size} bytes, shorter than its saved offset ${e.pos}`);
    }
    return rc.target.open(e.path, reopenFlags(e.flags, { directory: false }));
  },
  seekable: (e) => !isPathOnly(e.flags),
};

export const directoryReopener: TargetReopener<'dir'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'dir'>): number {
    const st = lstatOrNull(e.path);
    if (!st) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} no longer exists` });
    if (!st.isDirectory()) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} is no longer a directory` });
    checkIdentity(rc, e);
    return rc.target.open(e.path, reopenFlags(e.flags, { directory: true }));
  },
  // A directory offset is a getdents cookie; lseek to it resumes a readdir where it was.
  seekable: (e) => !isPathOnly(e.flags) && e.pos !== 0n,
};
