/**
 * open(2) flags as the kernel prints them in /proc/PID/fdinfo/N (octal, x86_64).
 * fdinfo shows the open file description's f_flags plus O_CLOEXEC when the fd has it.
 */
export const O = {
  ACCMODE: 0o3,
  RDONLY: 0o0,
  WRONLY: 0o1,
  RDWR: 0o2,
  CREAT: 0o100,
  EXCL: 0o200,
  NOCTTY: 0o400,
  TRUNC: 0o1000,
  APPEND: 0o2000,
  NONBLOCK: 0o4000,
  DSYNC: 0o10000,
  ASYNC: 0o20000,
  DIRECT: 0o40000,
  LARGEFILE: 0o100000,
  DIRECTORY: 0o200000,
  NOFOLLOW: 0o400000,
  NOATIME: 0o1000000,
  CLOEXEC: 0o2000000,
  SYNC_BIT: 0o4000000, // __O_SYNC; O_SYNC is __O_SYNC|O_DSYNC
  PATH: 0o10000000,
  TMPFILE_BIT: 0o20000000, // __O_TMPFILE; O_TMPFILE is __O_TMPFILE|O_DIRECTORY
} as const;

/**
 * The flags a reopen may pass on. Everything that only made sense for the original
 * open is dropped: O_CREAT/O_EXCL/O_TRUNC would create or empty the file, O_TMPFILE
 * would create a new anonymous file, and O_CLOEXEC belongs to the fd, not the file
 * (dup3 sets it). O_ASYNC cannot be set through open(2) at all: owner.ts sets it with
 * F_SETFL once the fds are in place. O_NOFOLLOW is kept: it stays in f_flags, where
 * F_GETFL shows it (vim's swap file, fts's directories), and no later call can add it;
 * the saved path is the resolved one, checked not to be a symbolic link, so it is
 * harmless there.
 */
const REOPEN_MASK =
  O.ACCMODE | O.APPEND | O.NONBLOCK | O.DSYNC | O.DIRECT | O.LARGEFILE | O.NOFOLLOW | O.NOATIME | O.SYNC_BIT | O.PATH;

export interface ReopenFlagsOptions {
  /** Reopening a directory: keep O_DIRECTORY so a swapped-in non-directory fails the open. */
  directory: boolean;
}

/** The flags for openat() that recreate a saved file description, O_CLOEXEC as the fd had it. */
export function reopenFlags(saved: number, opts: ReopenFlagsOptions): number {
  let flags = (saved & REOPEN_MASK) | O.NOCTTY; // never pick up a controlling terminal by accident
  if (opts.directory) flags |= O.DIRECTORY;
  if (saved & O.CLOEXEC) flags |= O.CLOEXEC;
  return flags;
}

export function isCloexec(saved: number): boolean {
  return (saved & O.CLOEXEC) !== 0;
}

export function isPathOnly(saved: number): boolean {
  return (saved & O.PATH) !== 0;
}
