/**
 * ioctl(2), userfaultfd(2), socket(2)/setsockopt(2) and the PAGEMAP_SCAN ioctl.
 * Added for `ckpt check` probes; dump will use userfaultfd + PAGEMAP_SCAN for
 * dirty-page tracking (no soft-dirty on these kernels).
 */
import { call, callNum } from './call.js';
import { addressOf, type Arg } from './native.js';
import { NR } from './nr.js';

const NR_SETSOCKOPT = 54;

export function ioctl(fd: number, request: number, arg: Arg = 0): bigint {
  return call(NR.ioctl, [fd, request, arg], { name: `ioctl(0x${request.toString(16)})` });
}

export const UFFD = {
  USER_MODE_ONLY: 1,
  /** _IOWR(0xAA, 0x3F, struct uffdio_api) */
  UFFDIO_API: 0xc018aa3f,
  API: 0xaa,
  FEATURE_PAGEFAULT_FLAG_WP: 1 << 0,
  FEATURE_WP_UNPOPULATED: 1 << 13,
  FEATURE_WP_ASYNC: 1 << 15,
  /** _IOWR(0xAA, 0x00, struct uffdio_register): range (16) + mode + ioctls = 32 bytes. */
  UFFDIO_REGISTER: 0xc020aa00,
  /** _IOR(0xAA, 0x01, struct uffdio_range) = 16 bytes. */
  UFFDIO_UNREGISTER: 0x8010aa01,
  REGISTER_MODE_WP: 2,
} as const;

/** PAGEMAP_SCAN flags: write-protect the matching pages (re-arm), and fail on an area not in async uffd-wp mode. */
export const PM_SCAN = { WP_MATCHING: 1, CHECK_WPASYNC: 2 } as const;

/** UFFDIO_REGISTER of [start, end) on `fd`, in the mm the userfaultfd was created in. */
export function uffdioRegister(fd: number, range: { start: bigint; end: bigint; mode: number }): void {
  const buf = Buffer.alloc(32);
  buf.writeBigUInt64LE(range.start, 0);
  buf.writeBigUInt64LE(range.end - range.start, 8);
  buf.writeBigUInt64LE(BigInt(range.mode), 16);
  ioctl(fd, UFFD.UFFDIO_REGISTER, addressOf(buf));
}

const O_CLOEXEC = 0o2000000;

/** A userfaultfd in this process (always close-on-exec). */
export function userfaultfd(flags = 0): number {
  return callNum(NR.userfaultfd, [flags | O_CLOEXEC], { name: 'userfaultfd' });
}

/**
 * UFFDIO_API handshake. Asking for no features returns every feature the kernel
 * supports; the handshake can be made only once per userfaultfd.
 */
export function uffdioApi(fd: number, features = 0n): { features: bigint; ioctls: bigint } {
  const buf = Buffer.alloc(24);
  buf.writeBigUInt64LE(BigInt(UFFD.API), 0);
  buf.writeBigUInt64LE(features, 8);
  ioctl(fd, UFFD.UFFDIO_API, addressOf(buf));
  return { features: buf.readBigUInt64LE(8), ioctls: buf.readBigUInt64LE(16) };
}

export function socket(domain: number, type: number, protocol = 0): number {
  return callNum(NR.socket, [domain, type | O_CLOEXEC, protocol], { name: 'socket' });
}

export function setsockoptInt(fd: number, opt: { level: number; name: number; value: number }): void {
  const buf = Buffer.alloc(4);
  buf.writeInt32LE(opt.value);
  call(NR_SETSOCKOPT, [fd, opt.level, opt.name, addressOf(buf), 4], { name: `setsockopt(${opt.level}, ${opt.name})` });
}

/** PAGEMAP_SCAN = _IOWR('f', 16, struct pm_scan_arg), struct pm_scan_arg being 12 u64 = 96 bytes. */
export const PAGEMAP_SCAN = 0xc0606610;
export const PM_SCAN_ARG_SIZE = 96;
export const PAGE_IS = { WPALLOWED: 1, WRITTEN: 2, FILE: 4, PRESENT: 8, SWAPPED: 16, PFNZERO: 32, HUGE: 64, SOFT_DIRTY: 128, GUARD: 256 } as const;

export interface PageRegion {
  start: bigint;
  end: bigint;
  categories: number;
}

export interface PagemapScanArgs {
  start: bigint;
  end: bigint;
  flags?: number;
  maxRegions?: number;
  categoryInverted?: number;
  categoryMask?: number;
  categoryAnyofMask?: number;
  returnMask: number;
}

/** ioctl(PAGEMAP_SCAN) on an open /proc/PID/pagemap: regions whose pages match the categories. */
export function pagemapScan(pagemapFd: number, a: PagemapScanArgs): { regions: PageRegion[]; walkEnd: bigint } {
  const max = a.maxRegions ?? 64;
  const vec = Buffer.alloc(max * 24);
  const arg = Buffer.alloc(PM_SCAN_ARG_SIZE);
  const fields = [
    BigInt(PM_SCAN_ARG_SIZE), BigInt(a.flags ?? 0), a.start, a.end, 0n, addressOf(vec), BigInt(max), 0n,
    BigInt(a.categoryInverted ?? 0), BigInt(a.categoryMask ?? 0), BigInt(a.categoryAnyofMask ?? 0), BigInt(a.returnMask),
  ];
  fields.forEach((v, i) => arg.writeBigUInt64LE(v, i * 8));
  const n = Number(ioctl(pagemapFd, PAGEMAP_SCAN, addressOf(arg)));
  const regions: PageRegion[] = [];
  for (let i = 0; i < n; i++) {
    regions.push({ start: vec.readBigUInt64LE(i * 24), end: vec.readBigUInt64LE(i * 24 + 8), categories: Number(vec.readBigUInt64LE(i * 24 + 16)) });
  }
  // keep vec alive until here (koffi.address does not)
  return { regions, walkEnd: arg.readBigUInt64LE(32) };
}
