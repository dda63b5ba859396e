/**
 * The anon_inode fd kinds in this process: eventfd, timerfd, signalfd and epoll
 * instances created by the restorer (then handed to the target), the clock they read,
 * and kcmp(KCMP_EPOLL_TFD), which tells whether an epoll watch is on a given fd.
 */
import { call, callNum } from './call.js';
import { isErrno } from './error.js';
import type { KcmpOrder } from './kcmp.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

export const EFD = { SEMAPHORE: 1, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
export const TFD = { NONBLOCK: 0o4000, CLOEXEC: 0o2000000, TIMER_ABSTIME: 1, TIMER_CANCEL_ON_SET: 2 } as const;
export const SFD = { NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
export const EPOLL_CLOEXEC = 0o2000000;
export const EPOLL_CTL = { ADD: 1, DEL: 2, MOD: 3 } as const;
/** _IOW('T', 0, __u64): sets a timerfd's expired-tick count (CONFIG_CHECKPOINT_RESTORE). */
const TFD_IOC_SET_TICKS = 0x40085400;
const KCMP_EPOLL_TFD = 7;

export interface Timespec {
  sec: number;
  nsec: number;
}

export function eventfd2(initval: number, flags: number): number {
  return callNum(NR.eventfd2, [initval, flags], { name: 'eventfd2' });
}

export function timerfdCreate(clockid: number, flags: number): number {
  return callNum(NR.timerfd_create, [clockid, flags], { name: `timerfd_create(clock ${clockid})` });
}

export function timerfdSettime(fd: number, args: { flags: number; value: Timespec; interval: Timespec }): void {
  const its = Buffer.alloc(32); // struct itimerspec { it_interval, it_value }
  its.writeBigInt64LE(BigInt(args.interval.sec), 0);
  its.writeBigInt64LE(BigInt(args.interval.nsec), 8);
  its.writeBigInt64LE(BigInt(args.value.sec), 16);
  its.writeBigInt64LE(BigInt(args.value.nsec), 24);
  call(NR.timerfd_settime, [fd, args.flags, addressOf(its), 0], { name: 'timerfd_settime' });
  its.fill(0); // keeps `its` referenced until the call has returned
}

/** TFD_IOC_SET_TICKS: the timer reads as having expired `ticks` times (ticks > 0). */
export function timerfdSetTicks(fd: number, ticks: bigint): void {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(ticks);
  call(NR.ioctl, [fd, TFD_IOC_SET_TICKS, addressOf(buf)], { name: 'ioctl(TFD_IOC_SET_TICKS)' });
  buf.fill(0);
}

/** signalfd4(-1, &mask, 8, flags): a new signalfd for the signals in `mask` (bit n-1 = signal n). */
export function signalfd4(mask: bigint, flags: number): number {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(mask);
  const fd = callNum(NR.signalfd4, [-1, addressOf(buf), 8, flags], { name: 'signalfd4' });
  buf.fill(0);
  return fd;
}

export function epollCreate1(flags: number): number {
  return callNum(NR.epoll_create1, [flags], { name: 'epoll_create1' });
}

/** struct epoll_event as x86_64 lays it out (packed: u32 events, u64 data). */
export function encodeEpollEvent(events: number, data: bigint): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32LE(events >>> 0, 0);
  b.writeBigUInt64LE(BigInt.asUintN(64, data), 4);
  return b;
}

export function clockGettime(clockid: number): Timespec {
  const ts = Buffer.alloc(16);
  call(NR.clock_gettime, [clockid, addressOf(ts)], { name: `clock_gettime(${clockid})` });
  return { sec: Number(ts.readBigInt64LE(0)), nsec: Number(ts.readBigInt64LE(8)) };
}

/**
 * kcmp(fdPid, pid, KCMP_EPOLL_TFD, fd, {efd, tfd, toff}): the order of file `fd` of
 * `fdPid` (default `pid`) and the file of the `toff`-th watch registered as fd number `tfd` in epoll
 * `efd` of `pid` (0: the watch is on that very file); 'none' when there is no such watch.
 */
export function kcmpEpollTfd(pid: number, args: { fd: number; efd: number; tfd: number; toff: number; fdPid?: number }): KcmpOrder | 'none' {
  const slot = Buffer.alloc(12);
  slot.writeUInt32LE(args.efd, 0);
  slot.writeUInt32LE(args.tfd, 4);
  slot.writeUInt32LE(args.toff, 8);
  let r: number;
  try {
    r = callNum(NR.kcmp, [args.fdPid ?? pid, pid, KCMP_EPOLL_TFD, args.fd, addressOf(slot)], { name: 'kcmp(KCMP_EPOLL_TFD)', pid });
  } catch (e) {
    // EBADF: fd `fd` is not open; ENOENT: no such watch.
    if (isErrno(e, 'ENOENT') || isErrno(e, 'EBADF')) return 'none';
    throw e;
  } finally {
    slot.fill(0);
  }
  return r === 0 ? 0 : r === 1 ? -1 : 1;
}
