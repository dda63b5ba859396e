/**
 * The "lock:" lines of /proc/PID/fdinfo/N (the same text as /proc/locks, from the
 * kernel's lock_get_status):
 *
 *   lock:	1: POSIX  ADVISORY  WRITE 8581 fe:00:2146351 10 14
 *   lock:	1: OFDLCK ADVISORY  WRITE -1 fe:00:2146352 0 EOF
 *   lock:	1: LEASE  ACTIVE    READ 8581 fe:00:2146356 0 EOF
 *
 * fdinfo lists the locks held through this open file whose owner is this process's
 * fd table (POSIX) or the open file itself (flock, OFD, leases); waiters blocked on a
 * lock are never listed there.
 */
import { malformed } from './procfs.js';

export interface LockLine {
  /** FLOCK, POSIX, OFDLCK, LEASE, DELEG, … as the kernel prints it. */
  class: string;
  /** ADVISORY for locks; ACTIVE, BREAKING or BREAKER for leases. */
  mode: string;
  /** READ, WRITE or UNLCK (a lease being broken to nothing). */
  type: string;
  /** The locker's pid (-1 for OFD locks). */
  pid: number;
  /** "major:minor:inode" of the locked file (device in hex, inode in decimal). */
  file: string;
  start: bigint;
  /** Last byte locked, inclusive; undefined up to end of file ("EOF"). */
  end?: bigint;
}

const LINE = /^lock:\s+\d+:\s+(\S+)\s+(\S+)\s+(\S+)\s+(-?\d+)\s+([0-9a-f]+:[0-9a-f]+:\d+)\s+(\d+)\s+(\d+|EOF)\s*$/;

export function parseLockLine(line: string): LockLine {
  const m = LINE.exec(line);
  if (!m) throw malformed('/proc/PID/fdinfo/N', `cannot read the lock line ${JSON.stringify(line)}`);
  const lock: LockLine = { class: m[1]!, mode: m[2]!, type: m[3]!, pid: Number(m[4]), file: m[5]!, start: BigInt(m[6]!) };
  if (m[7] !== 'EOF') lock.end = BigInt(m[7]!);
  return lock;
}
