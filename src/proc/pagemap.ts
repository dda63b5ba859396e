import { closeSync, openSync, readSync } from 'node:fs';
import { CkptError } from '../common/errors.js';
import { isErrno } from '../sys/error.js';
import { PAGE_IS, pagemapScan } from '../sys/ioctl.js';
import { procError } from './procfs.js';

/** One decoded /proc/PID/pagemap entry (Documentation/admin-guide/mm/pagemap.rst). */
export interface PagemapEntry {
  present: boolean;
  swapped: boolean;
  /** Bit 56: mapped by this process only. */
  exclusive: boolean;
  /** Bit 55; always 0 on kernels without CONFIG_MEM_SOFT_DIRTY, like ours. */
  softDirty: boolean;
  /** Bit 57: write-protected through userfaultfd. */
  uffdWp: boolean;
  /** Bit 61: a file page or shared anonymous page. */
  fileOrSharedAnon: boolean;
  /** Bits 0-54 when present; 0 without CAP_SYS_ADMIN. */
  pfn: bigint;
  /** Bits 0-4 when swapped. */
  swapType: number;
  /** Bits 5-54 when swapped. */
  swapOffset: bigint;
}

export const PAGE_SIZE = 4096;
const PAGE_SHIFT = 12n;
const ENTRY_SIZE = 8;

const bit = (v: bigint, n: bigint): boolean => ((v >> n) & 1n) === 1n;
const LOW_55 = (1n << 55n) - 1n;

export function decodePagemapEntry(v: bigint): PagemapEntry {
  const present = bit(v, 63n);
  const swapped = bit(v, 62n);
  const low = v & LOW_55;
  return {
    present,
    swapped,
    exclusive: bit(v, 56n),
    softDirty: bit(v, 55n),
    uffdWp: bit(v, 57n),
    fileOrSharedAnon: bit(v, 61n),
    pfn: present ? low : 0n,
    swapType: swapped ? Number(low & 0x1fn) : 0,
    swapOffset: swapped ? low >> 5n : 0n,
  };
}

/** A run of consecutive pages that have contents to dump. */
export interface PageRun {
  start: bigint;
  pages: number;
}

// Bits 62 (swapped) and 63 (present) live in the high 32-bit half of each entry,
// the odd word on a little-endian host (x86_64, arm64), which is all we support.
const PRESENT_OR_SWAPPED_HI = 0xc0000000;

/**
 * The object-free core of presentPageRuns: pairs (first page index, page count)
 * of present-or-swapped runs, packed in a Uint32Array. Only the high halves of the
 * entries are inspected, as 32-bit words.
 */
export function presentPageSpans(buf: Buffer): Uint32Array {
  const n = Math.floor(buf.length / ENTRY_SIZE);
  // Uint32Array needs 4-byte alignment; pooled Buffers may start anywhere, and a
  // fresh Uint8Array copy always starts at offset 0.
  const src = buf.byteOffset % 4 === 0 ? buf : new Uint8Array(buf);
  const words = new Uint32Array(src.buffer, src.byteOffset, n * 2);
  // Typical memory has few runs: start small and grow, rather than zero-filling
  // room for the worst case (a run every other page).
  let out = new Uint32Array(256);
  let k = 0;
  let i = 0;
  while (i < n) {
    while (i < n && ((words[2 * i + 1] as number) & PRESENT_OR_SWAPPED_HI) === 0) i++;
    if (i === n) break;
    const first = i;
    while (i < n && ((words[2 * i + 1] as number) & PRESENT_OR_SWAPPED_HI) !== 0) i++;
    if (k === out.length) {
      const bigger = new Uint32Array(out.length * 4);
      bigger.set(out);
      out = bigger;
    }
    out[k++] = first;
    out[k++] = i - first;
  }
  return out.subarray(0, k);
}

/**
 * Runs of present-or-swapped pages in a pagemap buffer whose first entry describes
 * startAddr. On the dump hot path (262144 entries per GiB); one object per run.
 */
export function presentPageRuns(buf: Buffer, startAddr: bigint): PageRun[] {
  const spans = presentPageSpans(buf);
  // User addresses fit in a double exactly, so one BigInt() per run is all the
  // bigint work; only addresses near 2^64 ([vsyscall]) take the slow path.
  const exact = startAddr + BigInt(buf.length / ENTRY_SIZE) * BigInt(PAGE_SIZE) <= BigInt(Number.MAX_SAFE_INTEGER);
  const base = Number(startAddr);
  const runs: PageRun[] = new Array(spans.length / 2);
  for (let k = 0; k < spans.length; k += 2) {
    const first = spans[k] as number;
    const start = exact ? BigInt(base + first * PAGE_SIZE) : startAddr + (BigInt(first) << PAGE_SHIFT);
    runs[k / 2] = { start, pages: spans[k + 1] as number };
  }
  return runs;
}

/** Open /proc/PID/pagemap for repeated readPagemapRange calls; the caller closes it. */
export function openPagemap(pid: number): number {
  try {
    return openSync(`/proc/${pid}/pagemap`, 'r');
  } catch (e) {
    throw procError(pid, 'pagemap', e);
  }
}

/** Largest single read(2) of pagemap: Node throws at 2^31 bytes and truncates 2^32 to 0. */
const MAX_READ = 1 << 30;

/** Entries for the pages of [start, end) (page-aligned addresses), 8 bytes each. */
export function readPagemapRange(fd: number, start: bigint, end: bigint): Buffer {
  const size = Number((end - start) >> PAGE_SHIFT) * ENTRY_SIZE;
  const buf = Buffer.allocUnsafeSlow(size);
  const base = (start >> PAGE_SHIFT) * BigInt(ENTRY_SIZE);
  let done = 0;
  while (done < size) {
    const got = readSync(fd, buf, done, Math.min(MAX_READ, size - done), base + BigInt(done));
    // pagemap returns fewer bytes only past the end of the address space.
    if (got === 0) break;
    done += got;
  }
  return done === size ? buf : buf.subarray(0, done);
}

/**
 * Reads pagemap ranges into one buffer reused from read to read (a fresh buffer per
 * area cost a fault per page of it on this VM, and 10 000 areas were 10 000 of them).
 * What read() returns is valid until the next read().
 */
export class PagemapReader {
  private buf = Buffer.allocUnsafeSlow(64 * 1024);
  constructor(readonly fd: number) {}

  read(start: bigint, end: bigint): Buffer {
    const size = Number((end - start) >> PAGE_SHIFT) * ENTRY_SIZE;
    if (size > this.buf.length) this.buf = Buffer.allocUnsafeSlow(Math.max(size, this.buf.length * 2));
    const base = (start >> PAGE_SHIFT) * BigInt(ENTRY_SIZE);
    let done = 0;
    while (done < size) {
      const got = readSync(this.fd, this.buf, done, Math.min(MAX_READ, size - done), base + BigInt(done));
      // pagemap returns fewer bytes only past the end of the address space.
      if (got === 0) break;
      done += got;
    }
    return this.buf.subarray(0, done);
  }
}

/** Address space one pagemap window covers at most: 1 GiB, 2 MiB of entries. */
export const PAGEMAP_WINDOW = 1n << 30n;

export interface AddressRange {
  start: bigint;
  end: bigint;
}

/**
 * The parts of [start, end) that may hold present or swapped pages, cut into windows
 * of at most `window` bytes, so that no caller reads (or allocates) 8 bytes for every
 * page of a huge sparse area (a 2 TiB MAP_NORESERVE area has 2^29 entries, 4 GiB).
 * Areas up to one window are returned whole; bigger ones are scanned with the
 * PAGEMAP_SCAN ioctl, which walks only the populated page tables. A kernel without it
 * (before 6.7: ENOTTY) gets every window of the area.
 */
export function populatedWindows(fd: number, range: AddressRange, window = PAGEMAP_WINDOW): AddressRange[] {
  if (range.end - range.start <= window) return [range];
  let found: AddressRange[];
  try {
    found = scanRegions(fd, range, PAGE_IS.PRESENT | PAGE_IS.SWAPPED);
  } catch (e) {
    if (!isErrno(e, 'ENOTTY')) throw e;
    found = [range];
  }
  const out: AddressRange[] = [];
  for (const r of found) {
    for (let at = r.start; at < r.end; at += window) out.push({ start: at, end: at + window < r.end ? at + window : r.end });
  }
  return out;
}

/** The parts of `range` whose pages are in any of the PAGEMAP_SCAN categories `want`, joined. */
function scanRegions(fd: number, range: AddressRange, want: number): AddressRange[] {
  const out: AddressRange[] = [];
  let at = range.start;
  while (at < range.end) {
    const { regions, walkEnd } = pagemapScan(fd, { start: at, end: range.end, maxRegions: 512, categoryAnyofMask: want, returnMask: want });
    for (const r of regions) {
      const last = out.at(-1);
      if (last && last.end === r.start) last.end = r.end;
      else out.push({ start: r.start, end: r.end });
    }
    if (walkEnd <= at) throw new CkptError('INTERNAL', `Cannot scan pagemap: PAGEMAP_SCAN made no progress at 0x${at.toString(16)}`);
    at = walkEnd;
  }
  return out;
}

/**
 * The guard regions (madvise MADV_GUARD_INSTALL, Linux 6.13; VmFlags `gu` on their area)
 * of [start, end): PAGEMAP_SCAN's PAGE_IS_GUARD category (6.14) walks only the page
 * tables that exist, so a huge area costs no more than a small one.
 */
export function guardRanges(fd: number, range: AddressRange): AddressRange[] {
  return scanRegions(fd, range, PAGE_IS.GUARD);
}

export function readPagemap(pid: number, start: bigint, end: bigint): Buffer {
  const fd = openPagemap(pid);
  try {
    return readPagemapRange(fd, start, end);
  } catch (e) {
    throw procError(pid, 'pagemap', e);
  } finally {
    closeSync(fd);
  }
}
