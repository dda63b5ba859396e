/**
 * Serving a userfaultfd registered in MISSING mode (lazy restore): UFFDIO_REGISTER,
 * UFFDIO_COPY, UFFDIO_ZEROPAGE, UFFDIO_WAKE, the uffd_msg records read(2) returns, and
 * poll(2) over many fds. Errors that a server expects (EEXIST: the page is already
 * there; EAGAIN: the layout is changing, read the pending events first; ENOENT/ESRCH:
 * the area or the process is gone) come back as results, not exceptions.
 */
import { call } from './call.js';
import { SysError } from './error.js';
import { addressOf, rawSyscall } from './native.js';
import { errnoName } from './errno.js';
import { NR } from './nr.js';

const IOC = {
  /** _IOWR(0xAA, 0x00, struct uffdio_register) */
  REGISTER: 0xc020aa00,
  /** _IOR(0xAA, 0x02, struct uffdio_range) */
  WAKE: 0x8010aa02,
  /** _IOWR(0xAA, 0x03, struct uffdio_copy) */
  COPY: 0xc028aa03,
  /** _IOWR(0xAA, 0x04, struct uffdio_zeropage) */
  ZEROPAGE: 0xc020aa04,
} as const;

export const UFFD_EVENT = { PAGEFAULT: 0x12, FORK: 0x13, REMAP: 0x14, REMOVE: 0x15, UNMAP: 0x16 } as const;
/**
 * The non-cooperative events a lazy restore must follow (fork, mremap, MADV_DONTNEED,
 * munmap), and the faulting thread's id in each fault (UFFD_FEATURE_THREAD_ID: the
 * guard names by it a forked process the server could not name).
 */
export const UFFD_LAZY_FEATURES = (1n << 1n) | (1n << 2n) | (1n << 3n) | (1n << 6n) | (1n << 8n);
const MODE_MISSING = 1n;
const COPY_MODE_DONTWAKE = 1n;
export const UFFD_MSG_SIZE = 32;

/** One uffd_msg, decoded: what the server needs of each event. */
export type UffdMsg =
  | { event: 'fault'; address: bigint; tid: number }
  | { event: 'fork'; ufd: number }
  | { event: 'remap'; from: bigint; to: bigint; len: bigint }
  | { event: 'remove' | 'unmap'; start: bigint; end: bigint }
  | { event: 'other'; code: number };

export function decodeUffdMsg(b: Buffer, off: number): UffdMsg {
  const code = b[off]!;
  const u64 = (i: number) => b.readBigUInt64LE(off + 8 + i * 8);
  switch (code) {
    case UFFD_EVENT.PAGEFAULT:
      return { event: 'fault', address: u64(1), tid: b.readUInt32LE(off + 24) };
    case UFFD_EVENT.FORK:
      return { event: 'fork', ufd: b.readUInt32LE(off + 8) };
    case UFFD_EVENT.REMAP:
      return { event: 'remap', from: u64(0), to: u64(1), len: u64(2) };
    case UFFD_EVENT.REMOVE:
      return { event: 'remove', start: u64(0), end: u64(1) };
    case UFFD_EVENT.UNMAP:
      return { event: 'unmap', start: u64(0), end: u64(1) };
    default:
      return { event: 'other', code };
  }
}

/** Registers [start, start+len) of the uffd's process in MISSING mode. */
export function uffdRegister(fd: number, range: { start: bigint; len: bigint }): void {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(range.start, 0);
  b.writeBigUInt64LE(range.len, 8);
  b.writeBigUInt64LE(MODE_MISSING, 16);
  call(NR.ioctl, [fd, IOC.REGISTER, addressOf(b)], { name: `ioctl(UFFDIO_REGISTER 0x${range.start.toString(16)})` });
}

/** What an UFFDIO_COPY or UFFDIO_ZEROPAGE did: bytes done, and the errno name that stopped it (if any). */
export interface FillResult {
  done: number;
  error?: string;
}

/** An UFFDIO_COPY/ZEROPAGE ioctl on struct `b`, whose result field (bytes done or -errno) is its last 8 bytes. */
function fillIoctl(fd: number, req: number, b: Buffer): FillResult {
  const r = rawSyscall(NR.ioctl, [fd, req, addressOf(b)]);
  const done = b.readBigInt64LE(b.length - 8);
  if (r.ret !== -1n) return { done: Number(done) };
  return { done: done > 0n ? Number(done) : 0, error: errnoName(r.errno) };
}

/** UFFDIO_COPY of `len` bytes at `src` (our memory) into the uffd's process at `dst`; wakes waiters on it. */
export function uffdCopy(fd: number, args: { dst: bigint; src: Buffer; len: number }): FillResult {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(args.dst, 0);
  b.writeBigUInt64LE(addressOf(args.src), 8);
  b.writeBigUInt64LE(BigInt(args.len), 16);
  const r = fillIoctl(fd, IOC.COPY, b);
  void args.src; // kept referenced until the ioctl has returned
  return r;
}

/**
 * UFFDIO_COPY of `len` bytes at address `src` of our memory (a mapping of the page file)
 * into the uffd's process at `dst`; with `wake: false` (UFFDIO_COPY_MODE_DONTWAKE) no
 * waiter is woken (a prefetch nobody waits for; see uffdWake).
 */
export function uffdCopyFrom(fd: number, args: { dst: bigint; src: bigint; len: number; wake?: boolean }): FillResult {
  const b = Buffer.alloc(40);
  b.writeBigUInt64LE(args.dst, 0);
  b.writeBigUInt64LE(args.src, 8);
  b.writeBigUInt64LE(BigInt(args.len), 16);
  b.writeBigUInt64LE(args.wake === false ? COPY_MODE_DONTWAKE : 0n, 24);
  return fillIoctl(fd, IOC.COPY, b);
}

/** UFFDIO_ZEROPAGE of [start, start+len): the page reads as zeros, as a fresh one. */
export function uffdZeropage(fd: number, range: { start: bigint; len: number }): FillResult {
  const b = Buffer.alloc(32);
  b.writeBigUInt64LE(range.start, 0);
  b.writeBigUInt64LE(BigInt(range.len), 8);
  return fillIoctl(fd, IOC.ZEROPAGE, b);
}

/** The top page below TASK_SIZE (47-bit): where no program maps anything. */
const PROBE_AT = 0x7fffffffe000n;

/**
 * Whether the process of a userfaultfd still has its memory: UFFDIO_ZEROPAGE says ESRCH
 * once it exited (the ctx keeps the mm_struct, not its users). Probed on a page no
 * program maps, which the ioctl refuses otherwise (ENOENT) without touching anything.
 */
export function uffdProcessAlive(fd: number): boolean {
  return uffdZeropage(fd, { start: PROBE_AT, len: 4096 }).error !== 'ESRCH';
}

/** UFFDIO_WAKE: lets threads waiting on a page that is already there go on. */
export function uffdWake(fd: number, range: { start: bigint; len: number }): void {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(range.start, 0);
  b.writeBigUInt64LE(BigInt(range.len), 8);
  rawSyscall(NR.ioctl, [fd, IOC.WAKE, addressOf(b)]);
}

/** read(2) that returns -1 for EAGAIN (non-blocking fd with nothing to read) and 0 at EOF. */
export function readNonBlocking(fd: number, buf: Buffer): number {
  const r = rawSyscall(NR.read, [fd, addressOf(buf), buf.length]);
  if (r.ret !== -1n) return Number(r.ret);
  const name = errnoName(r.errno);
  if (name === 'EAGAIN' || name === 'EINTR') return -1;
  throw new SysError(`read(${fd})`, r.errno);
}

const POLL = { IN: 0x1, ERR: 0x8, HUP: 0x10, NVAL: 0x20 } as const;

/** poll(2) on `fds` for POLLIN; returns the revents of each (0: nothing). */
export function pollIn(fds: readonly number[], timeoutMs: number): number[] {
  const b = Buffer.alloc(fds.length * 8);
  fds.forEach((fd, i) => {
    b.writeInt32LE(fd, i * 8);
    b.writeInt16LE(POLL.IN, i * 8 + 4);
  });
  const r = rawSyscall(7 /* poll */, [addressOf(b), fds.length, timeoutMs]);
  if (r.ret === -1n && errnoName(r.errno) !== 'EINTR') throw new SysError('poll', r.errno);
  return fds.map((_, i) => (r.ret > 0n ? b.readInt16LE(i * 8 + 6) : 0));
}

/** _IOWR(0xAA, 0x06, struct uffdio_writeprotect): range (16) + mode (8). */
const UFFDIO_WRITEPROTECT = 0xc018aa06;
const WP_MODE_PROTECT = 1n;

/** The non-cooperative events a background dump follows (mremap, MADV_DONTNEED, munmap); not fork. */
export const UFFD_BACKGROUND_FEATURES = (1n << 2n) | (1n << 3n) | (1n << 6n);

/**
 * UFFDIO_WRITEPROTECT of [start, start+len): `protect` write-protects the pages present
 * there, else the protection goes and the writers waiting on those pages are woken.
 * Returns the errno name that refused it (ENOENT: no area registered there any more;
 * ESRCH: the process's memory is gone), undefined when done.
 */
export function uffdWriteprotect(fd: number, args: { start: bigint; len: bigint; protect: boolean }): string | undefined {
  const b = Buffer.alloc(24);
  b.writeBigUInt64LE(args.start, 0);
  b.writeBigUInt64LE(args.len, 8);
  b.writeBigUInt64LE(args.protect ? WP_MODE_PROTECT : 0n, 16);
  const r = rawSyscall(NR.ioctl, [fd, UFFDIO_WRITEPROTECT, addressOf(b)]);
  return r.ret === -1n ? errnoName(r.errno) : undefined;
}
