/**
 * The --pidfile of a restore. As CRIU does, it is created with O_EXCL (an existing
 * file is an error, never overwritten) and O_NOFOLLOW (a symlink planted there is
 * never followed into someone else's file), and it is created BEFORE anything is
 * built, so that a bad path fails the restore while nothing exists yet. The PID is
 * written once the tree is ready; a failed restore removes the file it created.
 */
import { closeSync, constants, lstatSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { CkptError } from '../common/errors.js';

/** Not in node's fs.constants: the blank process (and so the restored one) must not inherit it. */
const O_CLOEXEC = 0o2000000;

export interface Pidfile {
  write(pid: number): void;
  /** Closes and removes the file (a failed restore). */
  discard(): void;
}

const REASONS: Record<string, string> = {
  EEXIST: 'it already exists',
  ELOOP: 'it is a symbolic link',
  ENOENT: 'its directory does not exist',
  ENOTDIR: 'a component of its path is not a directory',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
};

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

export function createPidfile(path: string): Pidfile {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | O_CLOEXEC, 0o644);
  } catch (e) {
    let code = (e as NodeJS.ErrnoException).code ?? '';
    if (code === 'EEXIST' && isSymlink(path)) code = 'ELOOP'; // O_EXCL refuses a symlink with EEXIST
    const kind = code === 'EACCES' || code === 'EPERM' ? 'PERMISSION' : 'USAGE';
    throw new CkptError(kind, `Cannot create pidfile ${path}: ${REASONS[code] ?? (e as Error).message}${code ? ` (${code})` : ''}`, { cause: e });
  }
  let open = true;
  const close = () => {
    if (open) closeSync(fd);
    open = false;
  };
  return {
    write(pid) {
      try {
        writeSync(fd, `${pid}\n`);
      } catch (e) {
        throw new CkptError('IO', `Cannot write pidfile ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { cause: e });
      } finally {
        close();
      }
    },
    discard() {
      close();
      try {
        unlinkSync(path);
      } catch {
        // already gone: nothing of ours is left
      }
    },
  };
}
