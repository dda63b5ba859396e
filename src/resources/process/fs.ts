/**
 * The filesystem context of a process (the kernel's fs_struct): working directory,
 * root directory and umask.
 *
 * Paths are saved as the dumper sees them (/proc/PID/cwd and /proc/PID/root resolve
 * from our root), so for a chrooted process the cwd includes the chroot path. Restore
 * therefore does chdir(cwd) first, while the target still has the restorer's root, and
 * chroot(root) after; chroot does not move the working directory.
 *
 * A working directory removed while in use (it was empty) is recreated in the same
 * parent, entered and removed again. A removed root directory is refused.
 *
 * Order: after files (the files restore opens paths in the target and creates files
 * whose mode the umask would change), before creds (chroot needs CAP_SYS_CHROOT).
 */
import { chmodSync, chownSync, mkdirSync, statSync } from 'node:fs';
import { z } from 'zod';
import { CkptError } from '../../common/errors.js';
import { procPath, readStatus } from '../../proc/index.js';
import { readProcLink } from '../../proc/procfs.js';
import { isErrno, NR } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Resource, RestoreContext } from '../types.js';
import { inTargetAs } from './fscreds.js';
import { createNameless } from '../files/nameless.js';
import { callIn, cString } from './inject.js';

export interface FsState {
  cwd: string;
  /**
   * The working directory was removed (rmdir) while in use: its mode and owner. It was
   * empty (rmdir needs that), so it is recreated in the same parent, entered and removed.
   */
  cwdRemoved?: { mode: number; uid: number; gid: number };
  /** "/" unless the process is chrooted. */
  root: string;
  umask: number;
}

const absolute = z.string().startsWith('/');
const id = z.number().int().min(0).max(0xffffffff);
export const fsSchema: z.ZodType<FsState> = z.object({
  cwd: absolute,
  cwdRemoved: z.object({ mode: z.number().int().min(0).max(0o7777), uid: id, gid: id }).optional(),
  root: absolute,
  umask: z.number().int().min(0).max(0o777),
});

const DELETED = ' (deleted)';

function readRoot(pid: number): string {
  const path = readProcLink(pid, 'root');
  // The link text of a deleted directory ends in " (deleted)", which a real name can too: ask the inode.
  if (statSync(procPath(pid, 'root')).nlink === 0) {
    // Nothing can be created in a removed directory: a chroot into one holds no program worth restoring.
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: its root directory ${path} was deleted`);
  }
  return path;
}

function readCwd(pid: number): Pick<FsState, 'cwd' | 'cwdRemoved'> {
  const path = readProcLink(pid, 'cwd');
  const st = statSync(procPath(pid, 'cwd'));
  if (st.nlink !== 0) return { cwd: path };
  const cwd = path.endsWith(DELETED) ? path.slice(0, -DELETED.length) : path;
  if (!cwd.startsWith('/')) throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: its removed working directory ${path} has no path`);
  return { cwd, cwdRemoved: { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid } };
}

/**
 * Enters a new empty directory made in the removed one's parent, then removes it: the
 * process is again in an empty, removed directory whose ".." is the same parent.
 */
function enterRemoved(ctx: RestoreContext, s: FsState & { cwdRemoved: NonNullable<FsState['cwdRemoved']> }): void {
  const dir = createNameless(ctx, {
    path: s.cwd,
    what: `the working directory of process ${ctx.pid}`,
    dir: true,
    sameParent: true,
    make: (path) => mkdirSync(path, 0o700),
  });
  try {
    chownSync(dir.path, s.cwdRemoved.uid, s.cwdRemoved.gid);
    enter(ctx, { nr: NR.chdir, name: 'chdir', path: dir.path, what: 'working directory' });
    chmodSync(dir.path, s.cwdRemoved.mode);
  } finally {
    dir.remove();
  }
}

function readUmask(ctx: { pid: number; remote: RemoteTask }): number {
  const umask = readStatus(ctx.pid).umask;
  if (umask !== undefined) return umask;
  // Kernels before 4.7 print no Umask line: umask(2) returns the old value; put it back.
  const old = Number(ctx.remote.call(NR.umask, [0], 'umask'));
  ctx.remote.call(NR.umask, [old], 'umask');
  return old;
}

function enter(ctx: RestoreContext, q: { nr: number; name: string; path: string; what: string }): void {
  try {
    callIn(ctx.remote, { nr: q.nr, name: q.name, data: cString(q.path), args: (addr) => [addr] });
  } catch (e) {
    const why = `Cannot restore the ${q.what} of process ${ctx.pid}`;
    if (isErrno(e, 'ENOENT') || isErrno(e, 'ENOTDIR')) {
      throw new CkptError('FILE_CHANGED', `${why}: ${q.path} no longer exists or is not a directory`, { cause: e });
    }
    if (isErrno(e, 'EACCES') || isErrno(e, 'EPERM')) {
      throw new CkptError('PERMISSION', `${why}: ${q.name} ${q.path} is not permitted`, { cause: e });
    }
    throw e;
  }
}

export const fs: Resource<FsState> = {
  name: 'fs',
  schema: fsSchema,
  dump(ctx) {
    return { ...readCwd(ctx.pid), root: readRoot(ctx.pid), umask: readUmask(ctx) };
  },
  restore(ctx, s) {
    // With the process's own credentials when the images are not trusted: a working
    // directory inside a directory it could not enter would give it what is below.
    inTargetAs(ctx.remote, { pid: ctx.pid, as: ctx.openAs }, () => {
      if (s.cwdRemoved) enterRemoved(ctx, { ...s, cwdRemoved: s.cwdRemoved });
      else enter(ctx, { nr: NR.chdir, name: 'chdir', path: s.cwd, what: 'working directory' });
      if (s.root !== '/') enter(ctx, { nr: NR.chroot, name: 'chroot', path: s.root, what: 'root directory' });
    });
    ctx.remote.call(NR.umask, [s.umask], 'umask');
  },
};
