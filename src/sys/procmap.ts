/**
 * PROCMAP_QUERY (Linux 6.11+): one area of a process asked for by address through an
 * ioctl on its /proc/PID/maps fd, instead of the kernel printing every area as text. A
 * process with 10 000 areas costs ~5 ms of kernel time per maps read; a query is a
 * tree lookup (issue 13).
 */
import { rawSyscall, addressOf } from './native.js';
import { NR } from './nr.js';
import { SysError } from './error.js';

/** _IOWR('f', 17, struct procmap_query) (104 bytes). */
const PROCMAP_QUERY = 0xc0686611;
const SIZE = 104;
const ENOENT = 2;

/** query_flags: the area must have these permissions; COVERING_OR_NEXT: the first such area at or after the address. */
export const PROCMAP = {
  READABLE: 0x01,
  WRITABLE: 0x02,
  EXECUTABLE: 0x04,
  SHARED: 0x08,
  COVERING_OR_NEXT: 0x10,
  FILE_BACKED: 0x20,
} as const;

export interface ProcmapArea {
  start: bigint;
  end: bigint;
  /** PROCMAP.READABLE | WRITABLE | EXECUTABLE | SHARED bits. */
  flags: number;
  offset: bigint;
  inode: number;
  dev: { major: number; minor: number };
  /** As maps prints it ('' for anonymous memory), without decoding; undefined when not asked for. */
  name?: string;
}

const query = Buffer.alloc(SIZE);
/** PATH_MAX and the " (deleted)" the kernel may append. */
const NAME_MAX = 4096 + 16;
let nameBuf: Buffer | undefined;

/**
 * The area containing `addr` (or with COVERING_OR_NEXT, the first matching one at or
 * after it), or undefined when there is none. Throws SysError ENOTTY on a kernel
 * without PROCMAP_QUERY.
 */
export function procmapQuery(fd: number, args: { addr: bigint; flags: number; name?: boolean; pid?: number }): ProcmapArea | undefined {
  query.fill(0);
  query.writeBigUInt64LE(BigInt(SIZE), 0);
  query.writeBigUInt64LE(BigInt(args.flags), 8);
  query.writeBigUInt64LE(args.addr, 16);
  if (args.name) {
    nameBuf ??= Buffer.allocUnsafeSlow(NAME_MAX);
    query.writeUInt32LE(NAME_MAX, 80);
    query.writeBigUInt64LE(addressOf(nameBuf), 88);
  }
  const r = rawSyscall(NR.ioctl, [fd, PROCMAP_QUERY, addressOf(query)]);
  if (r.ret === -1n) {
    if (r.errno === ENOENT) return undefined;
    throw new SysError('ioctl(PROCMAP_QUERY)', r.errno, args.pid);
  }
  const area: ProcmapArea = {
    start: query.readBigUInt64LE(24),
    end: query.readBigUInt64LE(32),
    flags: Number(query.readBigUInt64LE(40)),
    offset: query.readBigUInt64LE(56),
    inode: Number(query.readBigUInt64LE(64)),
    dev: { major: query.readUInt32LE(72), minor: query.readUInt32LE(76) },
  };
  if (args.name) {
    // The size includes the terminating NUL; 0 for an area without a name.
    const size = query.readUInt32LE(80);
    area.name = size > 1 ? nameBuf!.toString('utf8', 0, size - 1) : '';
  }
  return area;
}
