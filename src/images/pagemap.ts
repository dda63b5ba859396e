// Layout of a page file (pages-N.img) and the schema of its pagemap image.
//
// A page file is one header page then raw page data, every run starting at a
// multiple of PAGE_SIZE in the file, so restore can preadv()/mmap a run straight
// into the target without copying through the restorer. The pagemap lists where
// each run of virtual addresses lives in the file, plus CRC-32s of fixed-size
// chunks of the data region (file bytes PAGE_SIZE..end).
import { z } from 'zod';
import { zBig } from './bigint.js';
import { badImage, checkVersion, FORMAT_VERSION, hex } from './format.js';

export const PAGE_SIZE = 4096;
export const PAGES_MAGIC = Buffer.from('CKPTPAGE', 'latin1');
/** Default checksum chunk: 1 MiB keeps the pagemap small (4 KiB of CRCs per GiB). */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
const ADDRESS_LIMIT = 1n << 64n;

export interface PageRun {
  vaddr: bigint;
  nrPages: number;
  fileOffset: bigint;
}

const Run = z.object({
  vaddr: zBig,
  nrPages: z.number().int().positive().max(Number.MAX_SAFE_INTEGER / PAGE_SIZE),
  fileOffset: zBig,
});

/** Pages whose contents are in the parent image set (an incremental dump): no file offset here. */
const ParentRun = z.object({
  vaddr: zBig,
  nrPages: z.number().int().positive().max(Number.MAX_SAFE_INTEGER / PAGE_SIZE),
});
export type ParentRun = z.infer<typeof ParentRun>;

export const Pagemap = z.object({
  pageSize: z.literal(PAGE_SIZE),
  runs: z.array(Run),
  /**
   * Format 1.4: pages present at dump but not written since the parent dump, found in the
   * parent's page file of the same id (or further up). Absent: every page is in `runs`.
   */
  inParent: z.array(ParentRun).optional(),
  checksum: z
    .object({
      algorithm: z.literal('crc32'),
      chunkSize: z.number().int().min(PAGE_SIZE).max(MAX_CHUNK_SIZE).refine((n) => (n & (n - 1)) === 0, 'power of two'),
      crcs: z.array(z.number().int().min(0).max(0xffffffff)),
    })
    .nullable(),
});
export type Pagemap = z.infer<typeof Pagemap>;

export function encodePagesHeader(): Buffer {
  const page = Buffer.alloc(PAGE_SIZE); // zero padding up to the first data page
  PAGES_MAGIC.copy(page, 0);
  page.writeUInt32LE(FORMAT_VERSION.major, 8);
  page.writeUInt32LE(FORMAT_VERSION.minor, 12);
  page.writeUInt32LE(PAGE_SIZE, 16);
  return page;
}

export function checkPagesHeader(where: string, head: Buffer): void {
  if (head.length < PAGE_SIZE) throw badImage(where, 'truncated (header page)');
  if (!head.subarray(0, 8).equals(PAGES_MAGIC)) throw badImage(where, 'not a ckpt page file (bad magic)');
  checkVersion(where, { major: head.readUInt32LE(8), minor: head.readUInt32LE(12) });
  const pageSize = head.readUInt32LE(16);
  if (pageSize !== PAGE_SIZE) throw badImage(where, `page size ${pageSize} is not ${PAGE_SIZE}`);
}

/** The byte length of a run. */
export function runBytes(run: Pick<PageRun, 'nrPages'>): number {
  return run.nrPages * PAGE_SIZE;
}

/**
 * Checks that a pagemap fits its page file: runs page-aligned, sorted and
 * non-overlapping in vaddr, inside the 64-bit address space, inside the file and
 * apart in it;
 * one CRC per chunk of the data region.
 */
export function validatePagemap(where: string, map: Pagemap, fileSize: number): void {
  if (fileSize < PAGE_SIZE || fileSize % PAGE_SIZE !== 0) {
    throw badImage(where, `file size ${fileSize} is not a whole number of pages`);
  }
  const page = BigInt(PAGE_SIZE);
  let prevEnd = 0n;
  map.runs.forEach((run, i) => {
    const at = `run ${i} (vaddr 0x${run.vaddr.toString(16)})`;
    const len = BigInt(runBytes(run));
    if (run.vaddr < 0n || run.vaddr % page !== 0n) throw badImage(where, `${at}: vaddr not page-aligned`);
    if (run.fileOffset < page || run.fileOffset % page !== 0n) {
      throw badImage(where, `${at}: file offset ${run.fileOffset} not a page-aligned offset past the header`);
    }
    if (run.vaddr + len > ADDRESS_LIMIT) throw badImage(where, `${at}: runs past the end of the address space`);
    if (run.vaddr < prevEnd) throw badImage(where, `${at}: overlaps or is out of order with the run before it`);
    if (run.fileOffset + len > BigInt(fileSize)) {
      throw badImage(where, `${at}: ends past the end of the file (${fileSize} bytes)`);
    }
    prevEnd = run.vaddr + len;
  });
  checkParentRuns(where, map);
  // Two runs reading the same file bytes would be one page restored twice (or a copy
  // of another's): each page of the file belongs to at most one run.
  const byOffset = map.runs.map((run, i) => ({ i, from: run.fileOffset, to: run.fileOffset + BigInt(runBytes(run)) }));
  byOffset.sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  for (let k = 1; k < byOffset.length; k++) {
    const [a, b] = [byOffset[k - 1]!, byOffset[k]!];
    if (b.from < a.to) throw badImage(where, `runs ${a.i} and ${b.i} share file bytes from offset ${b.from}`);
  }
  if (map.checksum) {
    const chunks = Math.ceil((fileSize - PAGE_SIZE) / map.checksum.chunkSize);
    if (map.checksum.crcs.length !== chunks) {
      throw badImage(where, `${map.checksum.crcs.length} chunk checksums for ${chunks} chunks`);
    }
  }
}

export function chunkMismatch(where: string, args: { chunk: number; got: number; want: number }): Error {
  return badImage(where, `checksum mismatch in page data chunk ${args.chunk} (crc32 ${hex(args.got)}, expected ${hex(args.want)})`);
}

/** Parent runs: page-aligned, sorted, apart from each other and from the page file's own runs. */
function checkParentRuns(where: string, map: Pagemap): void {
  if (!map.inParent) return;
  const page = BigInt(PAGE_SIZE);
  const all = [...map.runs.map((r) => ({ r, own: true })), ...map.inParent.map((r) => ({ r, own: false }))];
  all.sort((a, b) => (a.r.vaddr < b.r.vaddr ? -1 : a.r.vaddr > b.r.vaddr ? 1 : 0));
  let prevEnd = 0n;
  for (const { r, own } of all) {
    const at = `${own ? 'run' : 'parent run'} at vaddr 0x${r.vaddr.toString(16)}`;
    if (r.vaddr < 0n || r.vaddr % page !== 0n) throw badImage(where, `${at}: vaddr not page-aligned`);
    const end = r.vaddr + BigInt(runBytes(r));
    if (end > ADDRESS_LIMIT) throw badImage(where, `${at}: runs past the end of the address space`);
    if (r.vaddr < prevEnd) throw badImage(where, `${at}: overlaps another run`);
    prevEnd = end;
  }
}
