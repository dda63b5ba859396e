// Reads one page file. Restore mostly wants `fd()` and the runs, to let the kernel
// copy a run from the page cache straight into the target (an injected preadv at
// run.fileOffset); `read(run)` is for everything else (tests, tools, page servers).
import * as fs from 'node:fs';
import { CkptError } from '../common/errors.js';
import { crc32 } from './crc32.js';
import { badImage } from './format.js';
import { closeQuietly, openImage, preadFull, tryIo } from './io.js';
import { checkPagesHeader, chunkMismatch, PAGE_SIZE, type PageRun, type Pagemap, type ParentRun, runBytes, validatePagemap } from './pagemap.js';
import type { PageLayer } from './chain.js';

const READ_SIZE = 4 * 1024 * 1024;

/** Saved pages at `vaddr`: `len` bytes at offset `pos` of `reader`'s page file. */
export interface PageLocation {
  vaddr: bigint;
  len: number;
  reader: PageReader;
  pos: number;
}

export class PageReader {
  readonly path: string;
  /** Runs sorted by vaddr, non-overlapping, page-aligned, inside the file (validated). */
  readonly runs: readonly Readonly<PageRun>[];
  readonly size: number;
  /** Pages unchanged since the parent dump, in the parent's page file (format 1.4; empty otherwise). */
  readonly inParent: readonly Readonly<ParentRun>[];
  private readonly map: Pagemap;
  private chain: readonly PageLayer[] | undefined;
  private handle: number | undefined;

  /** Opens and validates pages file `path` against its (already parsed) pagemap. */
  constructor(path: string, map: Pagemap) {
    this.path = path;
    this.map = map;
    const fd = openImage(path);
    try {
      this.size = tryIo(`read ${path}`, () => fs.fstatSync(fd).size);
      const head = Buffer.alloc(Math.min(this.size, PAGE_SIZE));
      tryIo(`read ${path}`, () => preadFull(fd, head, 0));
      checkPagesHeader(path, head);
      validatePagemap(path, map, this.size);
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
    this.handle = fd;
    this.runs = Object.freeze(map.runs.map((r) => Object.freeze({ ...r })));
    this.inParent = Object.freeze((map.inParent ?? []).map((r) => Object.freeze({ ...r })));
  }

  /**
   * Every page file the pages of this id come from, this one first, then the parents'
   * pieces (chain.ts): a restore fills memory from each layer's runs, in that reader's
   * file. One layer unless the set is an incremental dump.
   */
  get layers(): readonly PageLayer[] {
    return this.chain ?? [{ reader: this, runs: this.runs }];
  }

  /** Set once by ImageReader.pages() when the pagemap has parent runs. */
  setLayers(layers: readonly PageLayer[]): void {
    if (this.chain) throw new CkptError('USAGE', `Cannot chain ${this.path} twice`);
    this.chain = Object.freeze([...layers]);
  }

  /** The read-only fd of the page file (valid until close()). */
  fd(): number {
    if (this.handle === undefined) throw new CkptError('USAGE', `Cannot use ${this.path}: the page reader is closed`);
    return this.handle;
  }

  get hasChecksums(): boolean {
    return this.map.checksum !== null;
  }

  /** Reads a run's pages; with `verify`, checks the CRCs of the chunks it touches first. */
  read(run: PageRun, opts: { verify?: boolean } = {}): Buffer {
    const start = Number(run.fileOffset);
    const len = runBytes(run);
    if (!Number.isSafeInteger(start) || start < PAGE_SIZE || start % PAGE_SIZE !== 0 || start + len > this.size) {
      throw new CkptError('USAGE', `Cannot read ${this.path}: run at file offset ${run.fileOffset} is not inside the file`);
    }
    const cs = this.map.checksum;
    if (!opts.verify || !cs) return this.pread(start, len);
    // Read whole chunks so their CRCs can be checked, then hand out the run's part.
    const first = Math.floor((start - PAGE_SIZE) / cs.chunkSize);
    const from = PAGE_SIZE + first * cs.chunkSize;
    const to = Math.min(this.size, PAGE_SIZE + Math.ceil((start + len - PAGE_SIZE) / cs.chunkSize) * cs.chunkSize);
    const buf = this.pread(from, to - from);
    for (let off = 0, i = first; off < buf.length; off += cs.chunkSize, i++) {
      const got = crc32(buf.subarray(off, off + cs.chunkSize));
      if (got !== cs.crcs[i]) throw chunkMismatch(this.path, { chunk: i, got, want: cs.crcs[i]! });
    }
    return buf.subarray(start - from, start - from + len);
  }

  /**
   * Copies the saved pages that fall in [vaddr, vaddr + into.length) into `into`, each at
   * its offset from `vaddr` (a lazy restore's server reads a window this way), from
   * whichever layer of an incremental chain holds them; bytes of pages the images do not
   * hold are left as they are. Returns the pieces copied, in order.
   */
  readAt(vaddr: bigint, into: Buffer): { vaddr: bigint; len: number }[] {
    const found = this.locate(vaddr, into.length);
    for (const f of found) f.reader.preadInto(into.subarray(Number(f.vaddr - vaddr), Number(f.vaddr - vaddr) + f.len), f.pos);
    return found.map((f) => ({ vaddr: f.vaddr, len: f.len }));
  }

  /**
   * Where the saved pages of [vaddr, vaddr + len) are: pieces of the page files of the
   * chain (`pos` in `reader`'s file, fd()), in order; pages the images do not hold are
   * not in any piece.
   */
  locate(vaddr: bigint, len: number): PageLocation[] {
    const out = this.layers.flatMap((l) => l.reader.locateIn(l.runs, { vaddr, len }));
    return out.sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
  }

  /** locate over `runs` (sorted pieces of this file's runs) only. */
  private locateIn(runs: readonly Readonly<PageRun>[], args: { vaddr: bigint; len: number }): PageLocation[] {
    const { vaddr } = args;
    const end = vaddr + BigInt(args.len);
    const out: PageLocation[] = [];
    let lo = 0;
    let hi = runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const r = runs[mid]!;
      if (r.vaddr + BigInt(runBytes(r)) <= vaddr) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < runs.length && runs[i]!.vaddr < end; i++) {
      const r = runs[i]!;
      const from = r.vaddr > vaddr ? r.vaddr : vaddr;
      const rEnd = r.vaddr + BigInt(runBytes(r));
      const to = rEnd < end ? rEnd : end;
      if (to <= from) continue;
      const len = Number(to - from);
      const pos = Number(r.fileOffset + (from - r.vaddr));
      if (!Number.isSafeInteger(pos) || pos + len > this.size) throw badImage(this.path, `run at vaddr 0x${r.vaddr.toString(16)} is not inside the file`);
      out.push({ vaddr: from, len, reader: this, pos });
    }
    return out;
  }

  /** Checks every chunk CRC of the data; returns false if the image has none to check. */
  verify(): boolean {
    const cs = this.map.checksum;
    if (!cs) return false;
    const buf = Buffer.allocUnsafe(Math.min(READ_SIZE, cs.chunkSize));
    cs.crcs.forEach((want, i) => {
      const start = PAGE_SIZE + i * cs.chunkSize;
      const end = Math.min(this.size, start + cs.chunkSize);
      let crc = 0;
      for (let pos = start; pos < end; pos += buf.length) {
        const n = Math.min(buf.length, end - pos);
        this.preadInto(buf.subarray(0, n), pos);
        crc = crc32(buf.subarray(0, n), crc);
      }
      if (crc !== want) throw chunkMismatch(this.path, { chunk: i, got: crc, want });
    });
    return true;
  }

  close(): void {
    closeQuietly(this.handle);
    this.handle = undefined;
  }

  private pread(pos: number, len: number): Buffer {
    const buf = Buffer.allocUnsafe(len);
    this.preadInto(buf, pos);
    return buf;
  }

  private preadInto(buf: Buffer, pos: number): void {
    const n = tryIo(`read ${this.path}`, () => preadFull(this.fd(), buf, pos));
    if (n !== buf.length) throw badImage(this.path, 'truncated (the file shrank while reading)');
  }
}
