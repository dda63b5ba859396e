// File helpers shared by the writers and readers: every fs failure becomes a
// CkptError that says which file and why, with the original error as `cause`.
import * as fs from 'node:fs';
import { CkptError } from '../common/errors.js';

const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EIO: 'input/output error',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EEXIST: 'file exists',
  EFBIG: 'file too large',
  EMFILE: 'too many open files',
};

/** Wraps an fs error as "Cannot OP PATH: reason (ERRNO)". */
export function ioError(what: string, err: unknown): CkptError {
  if (err instanceof CkptError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const reason = code ? `${REASONS[code] ?? (err as Error).message} (${code})` : String(err);
  const kind = code === 'EACCES' || code === 'EPERM' ? 'PERMISSION' : 'IO';
  return new CkptError(kind, `Cannot ${what}: ${reason}`, { cause: err });
}

/** Runs `fn`, converting any thrown fs error with ioError(what). */
export function tryIo<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw ioError(what, e);
  }
}

/**
 * Creates a new file 0600 (never follows or reuses an existing one), read-write: the
 * page writer's reserve() lets the dumper map the file to fill it. `path` may be
 * /proc/self/fd/N/name (ImageWriter's directory fd); errors name `shown`.
 */
export function createFile(path: string, shown = path): number {
  return tryIo(`create ${shown}`, () => {
    const fd = fs.openSync(path, 'wx+', 0o600);
    fs.fchmodSync(fd, 0o600); // the umask may have cleared bits we want; be explicit
    return fd;
  });
}

/**
 * Opens an image file to read it: never through a symbolic link (O_NOFOLLOW), never
 * blocking on a FIFO put in its place (O_NONBLOCK), and only a regular file.
 */
export function openImage(path: string): number {
  const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  let fd: number;
  try {
    fd = fs.openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new CkptError('BAD_IMAGE', `Cannot read ${path}: it is a symbolic link`);
    throw ioError(`open ${path}`, e);
  }
  let regular = false;
  try {
    regular = fs.fstatSync(fd).isFile();
  } finally {
    if (!regular) closeQuietly(fd);
  }
  if (!regular) throw new CkptError('BAD_IMAGE', `Cannot read ${path}: not a regular file`);
  return fd;
}

/** Writes all of `data` at the current position (writeSync may write less). */
export function writeAll(fd: number, data: Uint8Array, pos?: number): void {
  let off = 0;
  while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off, pos === undefined ? null : pos + off);
}

/** Reads exactly data.length bytes at `pos`; returns how many were there (short at EOF). */
export function preadFull(fd: number, data: Uint8Array, pos: number): number {
  let off = 0;
  while (off < data.length) {
    const n = fs.readSync(fd, data, off, data.length - off, pos + off);
    if (n === 0) break;
    off += n;
  }
  return off;
}

/** Closes an fd, ignoring errors: for cleanup paths that must not mask the first error. */
export function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    fs.closeSync(fd);
  } catch {
    // already closed or never valid; nothing to undo
  }
}
