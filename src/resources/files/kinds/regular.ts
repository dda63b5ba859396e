/**
 * Regular files and directories that still have their name: reopened by path. A file
 * whose name this fd used was removed while the file keeps another name (a hard link)
 * is not deleted: it is reopened by its file handle, the same inode, wherever its other
 * names are (a path search could not find them).
 */
import { closeSync, fstatSync, lstatSync, openSync, type Stats } from 'node:fs';
import { readMountinfo } from '../../../proc/index.js';
import { isErrno, nameToHandle, openByHandle, SysError, type FileHandle } from '../../../sys/index.js';
import { fdPath, withoutDeletedSuffix, type FdFacts } from '../facts.js';
import { isPathOnly, O, reopenFlags } from '../flags.js';
import type { EntryOf } from '../schema.js';
import { dumpError, restoreError, savedPath, type KindDumpContext, type KindRestoreContext, type TargetReopener } from './kind.js';

export function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

export function dumpRegular(_dc: KindDumpContext, f: FdFacts): EntryOf<'reg'> {
  return { kind: 'reg', fd: f.fd, flags: f.flags, pos: f.pos, path: savedPath(f, f.link), size: BigInt(f.stat.size) };
}

/** A file unlinked from this fd's name but linked elsewhere: saved as its file handle. */
export function dumpOtherLink(_dc: KindDumpContext, f: FdFacts): EntryOf<'reg'> {
  const refuse = (why: string) =>
    dumpError(f, { code: 'UNSUPPORTED', reason: `${f.link} was unlinked but its file keeps ${f.stat.nlink} other name(s), and ${why}` });
  let h: FileHandle;
  try {
    h = nameToHandle(fdPath(f.pid, f.fd));
  } catch (e) {
    throw refuse(`its file system gives no file handle to reopen it by (${e instanceof SysError ? e.errnoName : String(e)})`);
  }
  const mount = readMountinfo(process.pid).find((m) => m.mountId === h.mountId);
  if (!mount) throw refuse(`its mount ${h.mountId} is not visible to ckpt`);
  return {
    kind: 'reg', fd: f.fd, flags: f.flags, pos: f.pos, path: savedPath(f, withoutDeletedSuffix(f.link)), size: BigInt(f.stat.size),
    handle: { mount: mount.mountPoint, type: h.type, bytes: h.bytes.toString('hex'), ino: f.stat.ino },
  };
}

/** Opens the file of a saved handle in the target: found in the restorer (O_PATH), opened by the target with its own rights. */
function openByHandleIn(rc: KindRestoreContext, e: EntryOf<'reg'> & { handle: FileHandleState }): number {
  const gone = (why: string) => restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `the file unlinked from ${e.path} (linked elsewhere at dump) ${why}` });
  // Not O_PATH: open_by_handle_at wants a real open file on the mount (EBADF otherwise).
  const mountFd = openSync(e.handle.mount, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
  let local: number;
  try {
    local = openByHandle(mountFd, { type: e.handle.type, bytes: Buffer.from(e.handle.bytes, 'hex'), flags: O.PATH | O.CLOEXEC });
  } catch (err) {
    if (isErrno(err, 'ESTALE') || isErrno(err, 'ENOENT')) throw gone('no longer exists');
    throw err;
  } finally {
    closeSync(mountFd);
  }
  try {
    const st = fstatSync(local);
    if (!st.isFile() || st.ino !== e.handle.ino) throw gone(`is now inode ${st.ino}, not ${e.handle.ino}`);
    return rc.target.reopenLocal(local, reopenFlags(e.flags, { directory: false }));
  } finally {
    closeSync(local);
  }
}

type FileHandleState = NonNullable<EntryOf<'reg'>['handle']>;

export function dumpDirectory(_dc: KindDumpContext, f: FdFacts): EntryOf<'dir'> {
  return { kind: 'dir', fd: f.fd, flags: f.flags, pos: f.pos, path: savedPath(f, f.link) };
}

export const regularReopener: TargetReopener<'reg'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'reg'>): number {
    if (e.handle) return openByHandleIn(rc, { ...e, handle: e.handle });
    const st = lstatOrNull(e.path);
    if (!st) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} no longer exists` });
    if (!st.isFile()) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} is no longer a regular file` });
    // Legal (a log truncated by logrotate, an O_APPEND writer) but worth knowing: reads will see EOF.
    if (BigInt(st.size) < e.pos) {
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
    return rc.target.open(e.path, reopenFlags(e.flags, { directory: true }));
  },
  // A directory offset is a getdents cookie; lseek to it resumes a readdir where it was.
  seekable: (e) => !isPathOnly(e.flags) && e.pos !== 0n,
};
