/**
 * What /proc tells us about one fd of a stopped process: where its link points, the
 * inode behind it (stat through the magic link reaches the open file's inode even
 * when the name is gone), and fdinfo's flags and offset. Kind rules decide on these.
 */
import { constants, statSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { readFdinfo, readFdLink } from '../../proc/index.js';

/** The parts of fs.Stats the rules and kinds use (a plain object in unit tests). */
export interface FdStat {
  mode: number;
  rdev: number;
  nlink: number;
  size: number;
  dev: number;
  ino: number;
  /** The inode's owner (absent in unit tests' plain objects). */
  uid?: number;
  gid?: number;
}

export interface FdFacts {
  pid: number;
  fd: number;
  /** readlink /proc/PID/fd/N: a path (maybe with " (deleted)"), "pipe:[ino]", "socket:[ino]", "anon_inode:[…]". */
  link: string;
  stat: FdStat;
  flags: number;
  pos: bigint;
  /** fdinfo's "lock:" lines: the locks held through this open file (see proc/locks.ts). */
  locks?: string[];
  /** Terminals only: the pty masters the dumped tree holds, by index (kinds/tty.ts). */
  ptyMasters?: ReadonlyMap<number, MasterRef>;
  /** Another fd of the dumped tree (this process included) points at the same object link. */
  inTree?: boolean;
  /** A pipe on a standard fd held once in the tree: no process holds its other end (kinds/pipe.ts). */
  otherEndGone?: boolean;
}

/** A pty master fd of the dumped tree. */
export interface MasterRef {
  pid: number;
  fd: number;
}

export const DELETED_SUFFIX = ' (deleted)';

/** The link of an fd without the " (deleted)" the kernel appends once the name is gone. */
export function withoutDeletedSuffix(link: string): string {
  return link.endsWith(DELETED_SUFFIX) ? link.slice(0, -DELETED_SUFFIX.length) : link;
}

export function fdPath(pid: number, fd: number): string {
  return `/proc/${pid}/fd/${fd}`;
}

export function readFacts(pid: number, fd: number): FdFacts {
  const link = readFdLink(pid, fd);
  const info = readFdinfo(pid, fd);
  let stat: FdStat;
  try {
    stat = statSync(fdPath(pid, fd));
  } catch (e) {
    throw new CkptError('SYSCALL', `Cannot dump fd ${fd} of process ${pid}: cannot stat ${link}: ${(e as Error).message}`, { cause: e });
  }
  const locks = info.lines.filter((l) => l.startsWith('lock:'));
  return { pid, fd, link, stat, flags: info.flags, pos: info.pos, locks };
}

const typeOf = (s: FdStat) => s.mode & constants.S_IFMT;
export const isReg = (s: FdStat) => typeOf(s) === constants.S_IFREG;
export const isDir = (s: FdStat) => typeOf(s) === constants.S_IFDIR;
export const isChr = (s: FdStat) => typeOf(s) === constants.S_IFCHR;
export const isBlk = (s: FdStat) => typeOf(s) === constants.S_IFBLK;
export const isFifo = (s: FdStat) => typeOf(s) === constants.S_IFIFO;

/** Linux dev_t encoding (new_encode_dev / glibc major()/minor()). */
export function major(rdev: number): number {
  const d = BigInt(rdev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & 0xfffff000n));
}

export function minor(rdev: number): number {
  const d = BigInt(rdev);
  return Number((d & 0xffn) | ((d >> 12n) & 0xffffff00n));
}

export function devName(rdev: number): string {
  return `${major(rdev)}:${minor(rdev)}`;
}
