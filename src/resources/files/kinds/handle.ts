/**
 * Files whose name this fd used was removed while the file keeps another name (a hard
 * link): not deleted, so not copied. They are saved as a file handle
 * (name_to_handle_at) and found again with open_by_handle_at, the same inode wherever
 * its other names are (a path search could not find them), checked by inode number.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { readMountinfo } from '../../../proc/index.js';
import { isErrno, linkFollow, nameToHandle, openByHandle, SysError, type FileHandle } from '../../../sys/index.js';
import { fdPath, type FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { SavedHandle } from '../schema.js';
import { createNameless, type Nameless } from '../nameless.js';
import { dumpError, restoreError, type KindRestoreContext } from './kind.js';

/** The file handle of fd `f`'s file, or a refusal naming why it cannot be had. */
export function dumpHandle(f: FdFacts): SavedHandle {
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
  return { mount: mount.mountPoint, type: h.type, bytes: h.bytes.toString('hex'), ino: f.stat.ino };
}

/**
 * An O_PATH fd of the restorer on the file of a saved handle (the caller closes it).
 * `e`: the entry, for messages; `type`: the file type it must be (S_IFREG, S_IFIFO).
 */
export function openHandle(rc: KindRestoreContext, e: { fd: number; path: string; handle: SavedHandle; type: number }): number {
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
  const st = fstatSync(local);
  if ((st.mode & 0o170000) !== e.type || st.ino !== e.handle.ino) {
    closeSync(local);
    throw gone(`is now inode ${st.ino}, not ${e.handle.ino}`);
  }
  return local;
}

/**
 * The file of a saved handle under its old name again (a new link, at the old path if
 * free): opened there, the fd reads "<path> (deleted)" once the caller removes the name,
 * as it did, while the file keeps its other names.
 */
export function relinkHandle(rc: KindRestoreContext, e: { fd: number; path: string; handle: SavedHandle; type: number }): Nameless {
  const local = openHandle(rc, e);
  try {
    return createNameless(rc.ctx, { path: e.path, what: `fd ${e.fd} of process ${rc.ctx.pid}`, make: (path) => linkFollow(`/proc/self/fd/${local}`, path) });
  } finally {
    closeSync(local);
  }
}
