/**
 * The page half of `restore --check`: a page sink for the dump's memory collector that
 * compares every page it reads back from a restored process with the saved page file
 * (or the chain's parents, or, for lazy areas, leaves it to the lazy-pages server).
 */
import { readSync } from 'node:fs';
import { readMaps } from '../proc/index.js';

const PAGE = 4096;

interface Run {
  vaddr: bigint;
  nrPages: number;
  fileOffset: bigint;
}

export interface SavedPages {
  runs: readonly Run[];
  open: () => number;
  /** The bytes at a file offset if the restore kept them as it wrote them (kept-pages.ts), else the file is read. */
  kept?: (offset: number, len: number) => Buffer | undefined;
}

function runAt(runs: readonly Run[], at: bigint): Run | undefined {
  let lo = 0;
  let hi = runs.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = runs[mid]!;
    if (at < r.vaddr) hi = mid - 1;
    else if (at >= r.vaddr + BigInt(r.nrPages * PAGE)) lo = mid + 1;
    else return r;
  }
  return undefined;
}

/**
 * The saved bytes of one append, read from the page file. Appends come one unit (2 MiB)
 * at most at a time; the buffer is kept for every check of this ckpt process, since a
 * fresh one costs a fault per page (docs/performance.md, "Cold memory").
 */
let savedBuf = Buffer.alloc(0);

/** A page sink that compares what the dump collectors read with a saved page file. */
export class PageCheck {
  private covered = 0;
  private readonly total: number;
  constructor(
    private readonly what: string,
    private readonly file: SavedPages,
    private readonly more: {
      /** Where differences are reported. */
      diffs: string[];
      /** Bytes the kernel itself rewrites while the process is rebuilt (each thread's struct rseq). */
      ignored?: readonly { start: bigint; end: bigint }[];
      /**
       * The ancestors' page files, nearest first: a page a child still shared with its
       * parent at dump is in the parent's file (or further up), not in the child's.
       */
      ancestors?: readonly SavedPages[];
      /** Incremental dumps: the parent images' pieces of this page file, saved pages too. */
      chain?: readonly SavedPages[];
      pid?: number;
      /**
       * Areas a lazy restore left to the lazy-pages server: a saved page there may not be
       * in yet (the server copies it from this same page file, or the chain's, on first
       * touch); one that is in is compared like any other.
       */
      lazy?: readonly { start: bigint; end: bigint }[];
    },
  ) {
    this.total = [file, ...(more.chain ?? [])].reduce((n, f) => n + f.runs.reduce((m, r) => m + r.nrPages, 0), 0);
    // The parents' pieces of an incremental chain are the server's to copy as well.
    this.lazySaved = [file, ...(more.chain ?? [])].reduce((n, f) => n + f.runs.reduce((m, r) => m + this.lazyPages(r.vaddr, r.vaddr + BigInt(r.nrPages * PAGE)), 0), 0);
  }

  private readonly lazySaved: number;
  private lazySeen = 0;

  /** Pages of [from, to) inside the lazy areas. */
  private lazyPages(from: bigint, to: bigint): number {
    let n = 0n;
    for (const a of this.more.lazy ?? []) {
      const lo = a.start > from ? a.start : from;
      const hi = a.end < to ? a.end : to;
      if (hi > lo) n += (hi - lo) / BigInt(PAGE);
    }
    return Number(n);
  }

  append(vaddr: bigint, data: Uint8Array): void {
    let at = vaddr;
    let off = 0;
    while (off < data.length) {
      const mine = [this.file, ...(this.more.chain ?? [])].find((f) => runAt(f.runs, at));
      const own = mine !== undefined;
      const from = mine ?? this.more.ancestors?.find((a) => runAt(a.runs, at));
      const run = from ? runAt(from.runs, at) : undefined;
      if (!run || !from) {
        this.diff(`${this.what}: page at 0x${at.toString(16)}${this.area(at)} is present after restore but was not saved`);
        at += BigInt(PAGE);
        off += PAGE;
        continue;
      }
      const len = Math.min(data.length - off, Number(run.vaddr + BigInt(run.nrPages * PAGE) - at));
      const fileOffset = Number(run.fileOffset + (at - run.vaddr));
      const kept = from.kept?.(fileOffset, len);
      if (!kept && savedBuf.length < len) savedBuf = Buffer.allocUnsafeSlow(len);
      const expected = kept ?? savedBuf.subarray(0, len);
      const n = kept ? len : readSync(from.open(), expected, 0, len, fileOffset);
      const got = Buffer.from(data.buffer, data.byteOffset + off, len);
      if (n !== len || !expected.equals(got)) {
        const i = this.firstDifference(expected, got, at);
        if (i >= 0) this.diff(`${this.what}: memory at 0x${(at + BigInt(i)).toString(16)}${this.area(at)} differs from the saved page`);
      }
      if (own) this.covered += len / PAGE;
      if (own) this.lazySeen += this.lazyPages(at, at + BigInt(len));
      at += BigInt(len);
      off += len;
    }
  }

  finish(): void {
    if (this.covered + (this.lazySaved - this.lazySeen) < this.total) this.diff(`${this.what}: ${this.total - this.covered} saved pages are missing after restore`);
  }

  /** " (in [heap])": where an address is, for messages. */
  private area(at: bigint): string {
    if (this.more.pid === undefined) return '';
    const m = readMaps(this.more.pid).find((e) => e.start <= at && at < e.end);
    return m ? ` (in ${m.path || 'anonymous memory'} ${m.shared ? 's' : 'p'})` : '';
  }

  private firstDifference(a: Buffer, b: Buffer, base: bigint): number {
    const ignored = this.more.ignored ?? [];
    // Page by page (memcmp), byte by byte only in a page that differs: a run of many
    // pages differs in one (a thread's struct rseq, rewritten by the kernel) on every check.
    for (let p = 0; p < a.length; p += PAGE) {
      const end = Math.min(p + PAGE, a.length);
      if (a.compare(b, p, end, p, end) === 0) continue;
      for (let i = p; i < end; i++) {
        if (a[i] === b[i]) continue;
        const addr = base + BigInt(i);
        if (!ignored.some((r) => r.start <= addr && addr < r.end)) return i;
      }
    }
    return -1;
  }

  private diff(m: string): void {
    this.more.diffs.push(m);
  }
}
