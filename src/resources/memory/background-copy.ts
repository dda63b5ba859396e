/**
 * The copying half of a background dump (background.ts): pieces of pending pages read
 * from the running process, checked (still the protected pages of the freeze), handed
 * to the page-file writer (background-writer.ts) and unprotected; pieces whose pages
 * moved (mremap) are pending again at their new place. The subclass answers the
 * userfaultfd events (`serve`), which a copy calls when an unprotect must wait for one.
 */
import { closeSync, readSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { uffdWriteprotect } from '../../sys/index.js';
import type { PageWriter } from '../../images/index.js';
import type { SmapsEntry } from '../../proc/index.js';
import { MemFile, readUnit } from './copy.js';
import { firstUnprotected, protectedRuns } from './pages.js';
import type { PendingPages, Piece } from './pending.js';
import { MAX_IOV, type Segment } from './split.js';
import { PageFileWriter, SLOT_BYTES } from './background-writer.js';
import { changed, cutTo, hasHole, type Range } from './background-pages.js';

const PAGE = 4096n;
/** Copies begun again after an mremap moved their pages, before a dump gives up. */
const MAX_RETRIES = 10_000;
/** How long a copy whose pages went waits for the mremap event that would say where to. */
const REMAP_WAIT_MS = 200;

/** What a background dump holds of one process. */
export interface Process {
  pid: number;
  uffd: number;
  /** Areas registered before the freeze (arm), protected while the tree ran. */
  armed: Range[];
  /** At the freeze: areas registered before it, of which only what was written since is protected again. */
  again: Range[];
  /** At the freeze: areas registered then, write-protected whole by protect(). */
  areas: Range[];
  pending: PendingPages;
  pw: PageWriter | undefined;
  file: number;
  pagemap: number;
  mem: MemFile;
  /** smaps read before the freeze (readFlags). */
  before?: SmapsEntry[];
  /** Ranges unmapped or moved since the arming (events): their areas may be new, with other VmFlags than `before` says. */
  replaced: Range[];
}

export interface BackgroundStats {
  /** Faults served (writes that waited for their page). */
  faults: number;
  /** Pages copied while frozen: areas the kernel would not write-protect. */
  frozenPages: number;
  /** Write-protecting at the freeze, ms (part of the frozen time): what was written since the arming, and new areas. */
  protectMs: number;
  /** Write-protecting every area before the freeze, the tree running, ms. */
  armMs: number;
  /** Pages chosen as they were copied (areas not planned at the freeze). */
  scannedPages: number;
  /** The copy after the tree runs again, ms. */
  copyMs: number;
  /** Reading smaps before the freeze, the tree running, ms. */
  flagsMs: number;
  /** Processes whose smaps was read while frozen after all (an area changed since readFlags). */
  smapsAtFreeze: number;
}

export abstract class PageCopier {
  protected readonly writer = new PageFileWriter();
  /** Remap events read so far (a copy under way moves its pieces by those read while it ran), and copies begun again. */
  protected readonly remapLog: { pid: number; from: bigint; to: bigint; len: bigint }[] = [];
  /** Copies under way (a fault served while another waits to unprotect its pages). */
  protected depth = 0;
  protected retries = 0;
  /** Copying the pages a thread is about to discard: no event is read until they are all in (copyBeforeDiscard). */
  protected holding = 0;
  readonly stats: BackgroundStats = { faults: 0, frozenPages: 0, protectMs: 0, armMs: 0, scannedPages: 0, copyMs: 0, flagsMs: 0, smapsAtFreeze: 0 };

  /** Reads what every userfaultfd has (waiting up to `timeoutMs` for something) and answers it. */
  protected abstract serve(timeoutMs?: number): void;

  /** Copies an area's pages now, as a plain dump would (the tree is frozen; nothing protects them). */
  protected copyFrozen(p: Process, a: { start: bigint; end: bigint }): void {
    const pieces = p.pending.take(a.start, a.end);
    this.stats.frozenPages += pieces.reduce((n, q) => n + q.len, 0) / Number(PAGE);
    this.copy(p, pieces, { protectedPages: false });
  }

  /**
   * Whether an mremap event comes: the kernel moves the pages first and queues the event
   * after, so a copy can find its pages gone a moment before their event is there.
   */
  protected awaitRemap(): boolean {
    const remaps = this.remapLog.length;
    const until = performance.now() + REMAP_WAIT_MS;
    for (let left = REMAP_WAIT_MS; left > 0 && this.remapLog.length === remaps; left = until - performance.now()) this.serve(Math.ceil(left));
    return this.remapLog.length !== remaps;
  }

  /**
   * Pieces a copy could not save (`bad`: their first page not as at the freeze): pending
   * again, moved by the mremaps read since the copy began (`since`); if none moved them,
   * once an mremap comes, or the dump fails.
   */
  protected retry(p: Process, args: { pieces: readonly Piece[]; since: number; bad: bigint }): void {
    let moved = false;
    const log = this.remapLog.slice(args.since).filter((r) => r.pid === p.pid);
    p.pending.putBack(args.pieces.map((q) => {
      let vaddr = q.vaddr;
      for (const r of log) {
        if (r.from <= vaddr && vaddr + BigInt(q.len) <= r.from + r.len) {
          vaddr += r.to - r.from;
          moved = true;
        }
      }
      return { ...q, vaddr };
    }));
    if ((!moved && !this.awaitRemap()) || ++this.retries > MAX_RETRIES) throw changed(p.pid, args.bad);
  }

  /** Reads `pieces`, checks they are still the pages of the freeze, hands them to the writer, unprotects them. */
  protected copy(p: Process, pieces: readonly Piece[], opts: { protectedPages: boolean }): void {
    const max = SLOT_BYTES;
    this.depth++;
    try {
      const planned = pieces.filter((q) => !q.scan);
      let scanned = pieces.filter((q) => q.scan);
      // A copy answers events when an unprotect waits for one (EAGAIN): a fault on a page
      // taken out but not read yet would find it not pending, and let the writer go before
      // ckpt has read it. So the outermost copy copies one scanned piece alone, and any copy
      // a scanned piece one buffer at a time; the rest is pending again.
      if (scanned.length > 0 && (this.depth === 1 || this.holding === 0)) {
        const first = planned.length > 0 && this.depth === 1 ? undefined : scanned[0]!;
        const rest = scanned.filter((q) => q !== first);
        if (first && first.len > max) rest.unshift({ ...first, vaddr: first.vaddr + BigInt(max), len: first.len - max });
        if (rest.length > 0) p.pending.putBack(rest);
        scanned = first ? [{ ...first, len: Math.min(first.len, max) }] : [];
      }
      if (planned.length > 0) this.copyWith(p, { pieces: planned, ...opts });
      for (const q of scanned) this.copyScanned(p, q);
    } finally {
      this.depth--;
    }
  }

  /**
   * A piece of an area not planned at the freeze: its pages still present and protected
   * are copied to a new place in the page file; then the whole piece is unprotected, and
   * it must still be one registered area (else it was unmapped, or replaced, before ckpt
   * came: pending again if mremap moved it, or the dump fails).
   */
  protected copyScanned(p: Process, piece: Piece): void {
    const since = this.remapLog.length;
    for (let off = 0; off < piece.len; off += SLOT_BYTES) {
      const q = { ...piece, vaddr: piece.vaddr + BigInt(off), len: Math.min(SLOT_BYTES, piece.len - off) };
      const map = this.pagemapOf(p, q);
      const runs = map ? protectedRuns(map, { anonOnly: q.scan!.anonOnly }) : [];
      const chosen: Piece[] = [];
      const bytes = runs.reduce((n, _, k) => (k % 3 === 1 ? n + runs[k]! * Number(PAGE) : n), 0);
      let at = bytes > 0 ? this.allocate(p, bytes) : 0;
      for (let k = 0; k < runs.length; k += 3) {
        const len = runs[k + 1]! * Number(PAGE);
        chosen.push({ vaddr: q.vaddr + BigInt(runs[k]!) * PAGE, len, fileOffset: at, viaMem: !q.scan!.readable || runs[k + 2] === 0 });
        at += len;
      }
      const done = chosen.length === 0 || this.copyWith(p, { pieces: chosen, protectedPages: true, scanned: true });
      const whole = { start: q.vaddr, len: BigInt(q.len) };
      if (!map || !done || !this.stillRegistered(p, whole)) {
        this.retry(p, { pieces: [{ ...q, len: piece.len - off }], since, bad: q.vaddr });
        return;
      }
      for (const c of chosen) p.pw!.placed(c.vaddr, { len: c.len, fileOffset: c.fileOffset });
      this.stats.scannedPages += bytes / Number(PAGE);
    }
  }

  protected allocate(p: Process, bytes: number): number {
    const at = p.pw!.allocate(bytes);
    p.file = at.fd;
    return at.fileOffset;
  }

  /**
   * Unprotects a scanned range whole (a page not chosen may be a file page still
   * protected); false when some of it is no registered area any more (unmapped, or mapped
   * anew since the freeze).
   */
  protected stillRegistered(p: Process, r: { start: bigint; len: bigint }): boolean {
    const err = this.holding > 0 ? undefined : this.unprotectRange(p, r, { missing: true });
    return err === undefined && !hasHole(p.pagemap, { start: r.start, end: r.start + r.len });
  }

  /**
   * Copies planned pieces (or pieces chosen from a scan: `scanned`); false when a page is
   * not the page of the freeze any more (what is left is pending again, but for `scanned`).
   */
  protected copyWith(p: Process, args: { pieces: readonly Piece[]; protectedPages: boolean; scanned?: boolean }): boolean {
    const since = this.remapLog.length;
    const todo = args.pieces.flatMap((q) => cutTo(q, SLOT_BYTES));
    for (let i = 0; i < todo.length; ) {
      // Through one buffer of the writer, a slot at a time.
      const batch: Piece[] = [];
      let bytes = 0;
      for (; i < todo.length && bytes + todo[i]!.len <= SLOT_BYTES && batch.length < MAX_IOV; i++) {
        batch.push(todo[i]!);
        bytes += todo[i]!.len;
      }
      const segs: Segment[] = [];
      let at = 0;
      for (const q of batch) {
        segs.push({ vaddr: q.vaddr, len: q.len, fileOffset: at, viaMem: q.viaMem });
        at += q.len;
      }
      // Waits for the writer, answering nothing: pages of this batch are taken out, not read yet.
      const slot = this.writer.acquire();
      let bad: bigint | undefined;
      try {
        const data = slot.buf.subarray(0, bytes);
        if (!args.protectedPages) readUnit(p.pid, { unit: { segs, bytes, fileStart: 0, fileEnd: bytes }, data, mem: p.mem });
        else bad = this.readChecked(p, { segs, data });
        if (bad === undefined) batch.forEach((q, k) => this.writer.write(slot, { fd: p.file, at: q.fileOffset, from: segs[k]!.fileOffset, len: q.len }));
      } finally {
        this.writer.release(slot);
      }
      if (bad !== undefined) {
        // Chosen from a scan: the scanned piece is pending again (copyScanned).
        if (args.scanned) return false;
        // Moved meanwhile (mremap; its event says where to): pending again, at the new place.
        this.retry(p, { pieces: [...batch, ...todo.slice(i)], since, bad });
        return false;
      }
      // The pages are in the writer's buffer, checked: a write to one of them may go on now.
      if (args.protectedPages && this.holding === 0) this.unprotect(p, segs);
    }
    return true;
  }

  /** Reads a batch of protected pages and checks them: the first page no longer as at the freeze, if any. */
  protected readChecked(p: Process, args: { segs: Segment[]; data: Buffer }): bigint | undefined {
    const { segs, data } = args;
    const bytes = data.length;
    try {
      readUnit(p.pid, { unit: { segs, bytes, fileStart: 0, fileEnd: bytes }, data, mem: p.mem });
    } catch {
      return segs[0]!.vaddr;
    }
    for (const s of segs) {
      const bad = this.check(p, s);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }

  /** pagemap entries of `s`; undefined when they cannot be read (the process is gone). */
  protected pagemapOf(p: Process, s: { vaddr: bigint; len: number }): Buffer | undefined {
    const map = Buffer.allocUnsafe((s.len / Number(PAGE)) * 8);
    try {
      return readSync(p.pagemap, map, 0, map.length, Number(s.vaddr / PAGE) * 8) === map.length ? map : undefined;
    } catch {
      return undefined;
    }
  }

  /** The first page of `s` that is not the protected page of the freeze any more. */
  protected check(p: Process, s: { vaddr: bigint; len: number }): bigint | undefined {
    const map = this.pagemapOf(p, s);
    if (!map) return s.vaddr;
    const bad = firstUnprotected(map);
    return bad >= 0 ? s.vaddr + BigInt(bad) * PAGE : undefined;
  }

  /** Lifts the protection of copied pages (which wakes their writers). */
  protected unprotect(p: Process, segs: readonly { vaddr: bigint; len: number }[]): void {
    let k = 0;
    while (k < segs.length) {
      const start = segs[k]!.vaddr;
      let end = start + BigInt(segs[k]!.len);
      for (k++; k < segs.length && segs[k]!.vaddr === end; k++) end += BigInt(segs[k]!.len);
      this.unprotectRange(p, { start, len: end - start });
    }
  }

  /**
   * UFFDIO_WRITEPROTECT off. ENOENT: no area there any more (copied already, nothing to
   * do; returned when `missing` asks). EAGAIN: the process is in the middle of an munmap,
   * mremap or madvise whose event is still to be read or answered: read the events, and
   * try again.
   */
  protected unprotectRange(p: Process, range: { start: bigint; len: bigint }, opts: { missing?: boolean } = {}): 'ENOENT' | undefined {
    const until = performance.now() + 10_000;
    for (;;) {
      const err = uffdWriteprotect(p.uffd, { ...range, protect: false });
      if (err === undefined) return undefined;
      if (err === 'ENOENT') return opts.missing ? err : undefined;
      // Its memory is gone (exit, exec): fine once every page is in, else the dump fails.
      if (err === 'ESRCH') {
        if (p.pending.empty && !opts.missing) return undefined;
        throw changed(p.pid, range.start);
      }
      if (err !== 'EAGAIN' || performance.now() > until) {
        throw new CkptError('INTERNAL', `Cannot unprotect memory of process ${p.pid} at 0x${range.start.toString(16)}: UFFDIO_WRITEPROTECT: ${err}`);
      }
      this.serve();
    }
  }
}

export function closeProcess(p: Process): void {
  if (p.uffd >= 0) closeSync(p.uffd);
  if (p.pagemap >= 0) closeSync(p.pagemap);
  p.mem.close();
  p.uffd = -1;
  p.pagemap = -1;
}