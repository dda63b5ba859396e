import { malformed, numericEntries, readProcDir, readProcLink, readProcText } from './procfs.js';

/** /proc/PID/fdinfo/N. */
export interface Fdinfo {
  pos: bigint;
  /** open(2) flags; printed in octal by the kernel. */
  flags: number;
  mntId: number;
  ino?: number;
  /** Other single "key: value" lines (eventfd-count, sigmask, clockid, it_value …), value trimmed. */
  extra: Record<string, string>;
  /** Repeating per-object records, kept raw: epoll "tfd:", "lock:", inotify/fanotify marks. */
  lines: string[];
}

// These keys may occur many times in one file, one line per watched target or lock.
const RECORD = /^(tfd:|lock:|inotify |fanotify )/;

export function parseFdinfo(text: string): Fdinfo {
  const extra: Record<string, string> = {};
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (RECORD.test(line) || colon <= 0) {
      lines.push(line);
      continue;
    }
    extra[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  const { pos, flags, mnt_id: mntId, ino, ...rest } = extra;
  if (pos === undefined || flags === undefined || mntId === undefined) {
    throw malformed('/proc/PID/fdinfo/N', `no pos, flags or mnt_id in ${JSON.stringify(text)}`);
  }
  return {
    pos: BigInt(pos),
    flags: parseInt(flags, 8),
    mntId: Number(mntId),
    ino: ino === undefined ? undefined : Number(ino),
    extra: rest,
    lines,
  };
}

export function readFdinfo(pid: number, fd: number): Fdinfo {
  return parseFdinfo(readProcText(pid, `fdinfo/${fd}`));
}

/** Open file descriptors of PID, ascending. */
export function listFds(pid: number): number[] {
  return numericEntries(readProcDir(pid, 'fd'));
}

/** The `n` lowest fd numbers PID does not use: those its next new fds get, while it is frozen. */
export function lowestFreeFds(pid: number, n: number): number[] {
  const used = new Set(listFds(pid));
  const free: number[] = [];
  for (let fd = 0; free.length < n; fd++) if (!used.has(fd)) free.push(fd);
  return free;
}

/** What fd N points at: a path, "pipe:[ino]", "socket:[ino]", "anon_inode:[eventfd]" … */
export function readFdLink(pid: number, fd: number): string {
  return readProcLink(pid, `fd/${fd}`);
}
