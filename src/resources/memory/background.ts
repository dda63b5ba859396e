/**
 * Background snapshot (`dump -R --background`): the tree is frozen only to collect
 * everything but page contents and to write-protect the private memory of each process
 * with a synchronous userfaultfd (MODE_WP, no WP_ASYNC); then it runs on while ckpt
 * copies the pages. A write to a page not yet copied waits in the kernel and sends ckpt a
 * fault: ckpt copies the pages pending around it first (FAULT_BYTES), then lifts their
 * protection, which wakes the writer. Pages are unprotected as soon as they are copied,
 * so later writes do not fault. The page file is laid out while frozen (every run
 * reserved in order), so pieces can be written in any order.
 *
 * Every piece is checked after it is read and before its protection goes: pagemap must
 * still show each page present (or swapped) and write-protected. A protected page cannot
 * be written; one unmapped or discarded (munmap, MADV_DONTNEED: the unmap and remove
 * events, which ckpt receives after the fact or just before), or replaced (exec, exit)
 * fails that check, and the dump fails naming the page: the image would not be the
 * memory of the freeze. mremap moves what is pending (remap event).
 *
 * If ckpt dies, its copies of the userfaultfds are its only ones (the target closed its
 * own at once, and closes it by itself if ckpt dies before: infect/uffd.ts): the kernel
 * releases them, which unregisters every area, drops the protection and wakes the
 * writers waiting. Nothing is left behind.
 */
import { closeSync, readSync, writeSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { isErrno, pollIn, readNonBlocking, decodeUffdMsg, uffdWriteprotect, UFFD_BACKGROUND_FEATURES, UFFD_MSG_SIZE } from '../../sys/index.js';
import { UFFD, uffdioRegister } from '../../sys/ioctl.js';
import { openPagemap, readStat } from '../../proc/index.js';
import { checkInterrupted, takeUserfaultfdWith, type RemoteTask } from '../../infect/index.js';
import type { PageWriter } from '../../images/index.js';
import { MemFile, readUnit, type PageRun } from './copy.js';
import { firstUnprotected } from './pages.js';
import { PendingPages, type Piece } from './pending.js';
import { MAX_IOV, UNIT_BYTES, unitBuffer, type Segment } from './split.js';
import { hasOwnPages, type Vma } from './state.js';

const PAGE = 4096n;
/** Copied between two looks at the faults: a fault waits for at most this much. */
export const BACKGROUND_BYTES = 512 * 1024;
/** Copied for a fault, around the page: the program waits for it. */
export const FAULT_BYTES = 64 * 1024;
/** One write to the page file: faults are answered between two. */
const WRITE_BYTES = 64 * 1024;
/** Copies begun again after an mremap moved their pages, before a dump gives up. */
const MAX_RETRIES = 10_000;
/** How long a copy whose pages went waits for the mremap event that would say where to. */
const REMAP_WAIT_MS = 200;

interface Process {
  pid: number;
  /** Registered areas, write-protected by protect(). */
  areas: { start: bigint; end: bigint }[];
  uffd: number;
  pending: PendingPages;
  pw: PageWriter;
  file: number;
  pagemap: number;
  mem: MemFile;
}

export interface BackgroundStats {
  /** Faults served (writes that waited for their page). */
  faults: number;
  /** Pages copied while frozen: areas the kernel would not write-protect. */
  frozenPages: number;
  /** Write-protecting every area, ms (part of the frozen time: the kernel visits every page). */
  protectMs: number;
  /** The copy after the tree runs again, ms. */
  copyMs: number;
}

function changed(pid: number, at: bigint): CkptError {
  if (!alive(pid)) return new CkptError('NO_PROCESS', `Cannot dump process ${pid} in the background: it exited before its pages were saved (a process that exits during the copy takes its memory with it); dump it again`);
  return new CkptError('UNSUPPORTED', `Cannot dump process ${pid} in the background: its page at 0x${at.toString(16)} changed before ckpt saved it (unmapped, discarded with madvise, or the process exec'd or exited); dump it without --background`);
}

export class BackgroundCopy {
  private readonly procs: Process[] = [];
  private readonly msgs = Buffer.alloc(UFFD_MSG_SIZE * 64);
  /** Remap events read so far, and copies begun again because their pages moved. */
  private remaps = 0;
  /** Copies under way (a fault served between the writes of another), and the buffer of the inner ones. */
  private depth = 0;
  private inner: Buffer | undefined;
  private retries = 0;
  readonly stats: BackgroundStats = { faults: 0, frozenPages: 0, protectMs: 0, copyMs: 0 };

  /**
   * While process `pid` is frozen: lays out its page file (`runs`, planned from pagemap)
   * and registers its private areas holding them. An area the kernel will not register
   * is copied now.
   */
  add(pid: number, args: { remote: RemoteTask; runs: readonly PageRun[]; vmas: readonly Vma[]; pw: PageWriter }): void {
    const pending = new PendingPages();
    let file = -1;
    for (const r of args.runs) {
      const at = args.pw.reserve(r.vaddr, r.len);
      file = at.fd;
      pending.push({ vaddr: r.vaddr, len: r.len, fileOffset: at.fileOffset, viaMem: r.viaMem });
    }
    if (pending.empty) return;
    let uffd: number;
    try {
      uffd = takeUserfaultfdWith(args.remote, { features: UFFD_BACKGROUND_FEATURES, userModeOnly: false });
    } catch (e) {
      if (!isErrno(e, 'EPERM')) throw e;
      throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid} in the background: it may not make a userfaultfd that also stops kernel writes (it needs CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd = 1); dump it without --background`, { cause: e });
    }
    const p: Process = { pid, areas: [], uffd, pending, pw: args.pw, file, pagemap: -1, mem: new MemFile(pid) };
    this.procs.push(p);
    p.pagemap = openPagemap(pid);
    for (const v of args.vmas) {
      if (!hasOwnPages(v) || !pending.has(v.start, v.end)) continue;
      try {
        uffdioRegister(uffd, { start: v.start, end: v.end, mode: UFFD.REGISTER_MODE_WP });
        p.areas.push({ start: v.start, end: v.end });
      } catch {
        this.copyFrozen(p, v);
      }
    }
  }

  /**
   * The last thing before the tree runs again: write-protects every registered area.
   * Not earlier: ckpt's own writes into a process it still works on (an injected call's
   * arguments on its stack) would wait on the protection, for ckpt itself.
   */
  protect(): void {
    const t0 = performance.now();
    for (const p of this.procs) {
      for (const a of p.areas) {
        if (uffdWriteprotect(p.uffd, { start: a.start, len: a.end - a.start, protect: true }) !== undefined) this.copyFrozen(p, a);
      }
    }
    this.stats.protectMs = performance.now() - t0;
  }

  /** Copies an area's pages now, as a plain dump would (the tree is frozen; nothing protects them). */
  private copyFrozen(p: Process, a: { start: bigint; end: bigint }): void {
    const pieces = p.pending.take(a.start, a.end);
    this.stats.frozenPages += pieces.reduce((n, q) => n + q.len, 0) / Number(PAGE);
    this.copy(p, pieces, { protectedPages: false });
  }

  /** After the tree runs again: copies every pending page, serving faults and events between pieces. */
  run(opts: { onBytes?: (n: number) => void } = {}): void {
    const t0 = performance.now();
    for (const p of this.procs) {
      while (!p.pending.empty) {
        checkInterrupted();
        this.serve();
        const pieces = p.pending.takeFirst({ bytes: BACKGROUND_BYTES, maxPieces: MAX_IOV });
        if (pieces.length === 0) continue;
        this.copy(p, pieces, { protectedPages: true });
        opts.onBytes?.(pieces.reduce((n, q) => n + q.len, 0));
      }
    }
    this.serve();
    this.stats.copyMs = performance.now() - t0;
  }

  /** Closes the page files (every page is in) and ends the protection. */
  finish(): void {
    for (const p of this.procs) p.pw.close();
    this.close();
  }

  /**
   * Ends the protection: closing ckpt's userfaultfds (the only ones) unregisters every
   * area and wakes every writer still waiting. Safe to call more than once.
   */
  close(): void {
    for (const p of this.procs) {
      if (p.uffd >= 0) closeSync(p.uffd);
      if (p.pagemap >= 0) closeSync(p.pagemap);
      p.mem.close();
      p.uffd = -1;
      p.pagemap = -1;
    }
  }

  /**
   * Whether an mremap event comes: the kernel moves the pages first and queues the event
   * after, so a copy can find its pages gone a moment before their event is there.
   */
  private awaitRemap(): boolean {
    const remaps = this.remaps;
    const until = performance.now() + REMAP_WAIT_MS;
    for (let left = REMAP_WAIT_MS; left > 0 && this.remaps === remaps; left = until - performance.now()) this.serve(Math.ceil(left));
    return this.remaps !== remaps;
  }

  /** Reads what every userfaultfd has (waiting up to `timeoutMs` for something) and answers it. */
  private serve(timeoutMs = 0): void {
    const fds = this.procs.filter((p) => p.uffd >= 0);
    if (fds.length === 0) return;
    const ready = pollIn(fds.map((p) => p.uffd), timeoutMs);
    fds.forEach((p, i) => {
      if (ready[i] === 0) return;
      for (;;) {
        const n = readNonBlocking(p.uffd, this.msgs);
        if (n <= 0) break;
        for (let off = 0; off + UFFD_MSG_SIZE <= n; off += UFFD_MSG_SIZE) this.answer(p, off);
      }
    });
  }

  private answer(p: Process, off: number): void {
    const m = decodeUffdMsg(this.msgs, off);
    if (m.event === 'fault') {
      this.stats.faults++;
      const page = m.address & ~(PAGE - 1n);
      const from = page & ~BigInt(FAULT_BYTES - 1);
      const pieces = p.pending.take(from, from + BigInt(FAULT_BYTES));
      if (pieces.length > 0) this.copy(p, pieces, { protectedPages: true });
      // Copied now or before (or never to be saved): the writer may go on. (Still pending if
      // the copy has to begin again: the background copy wakes it.)
      if (!p.pending.has(page, page + PAGE)) this.unprotectRange(p, { start: page, len: PAGE });
    } else if (m.event === 'remap') {
      this.remaps++;
      p.pending.move(m);
    } else if (m.event === 'remove' || m.event === 'unmap') {
      // remove (MADV_DONTNEED) comes just before the zap: the pages may still be there.
      const pieces = p.pending.take(m.start, m.end);
      if (pieces.length > 0) this.copy(p, pieces, { protectedPages: true });
    }
  }

  /** Reads `pieces`, checks they are still the pages of the freeze, writes them to their places, unprotects them. */
  private copy(p: Process, pieces: readonly Piece[], opts: { protectedPages: boolean }): void {
    // Copies made while another is under way (faults served between its writes) have a
    // buffer of their own.
    const buf = this.depth === 0 ? unitBuffer() : (this.inner ??= Buffer.allocUnsafeSlow(UNIT_BYTES));
    this.depth++;
    try {
      this.copyWith(p, { pieces, buf, ...opts });
    } finally {
      this.depth--;
    }
  }

  private copyWith(p: Process, args: { pieces: readonly Piece[]; buf: Buffer; protectedPages: boolean }): void {
    const { pieces, buf } = args;
    const opts = args;
    const todo = pieces.flatMap((q) => cutTo(q, buf.length));
    for (let i = 0; i < todo.length; ) {
      // Through the one buffer, a unit at a time.
      const batch: Piece[] = [];
      let bytes = 0;
      for (; i < todo.length && bytes + todo[i]!.len <= buf.length && batch.length < MAX_IOV; i++) {
        batch.push(todo[i]!);
        bytes += todo[i]!.len;
      }
      const segs: Segment[] = [];
      let at = 0;
      for (const q of batch) {
        segs.push({ vaddr: q.vaddr, len: q.len, fileOffset: at, viaMem: q.viaMem });
        at += q.len;
      }
      const data = buf.subarray(0, bytes);
      if (!opts.protectedPages) readUnit(p.pid, { unit: { segs, bytes, fileStart: 0, fileEnd: bytes }, data, mem: p.mem });
      else {
        const bad = this.readChecked(p, { segs, data });
        if (bad !== undefined) {
          // Moved meanwhile (mremap; its event says where to): pending again, at the new place.
          p.pending.putBack([...batch, ...todo.slice(i)]);
          if (!this.awaitRemap() || ++this.retries > MAX_RETRIES) throw changed(p.pid, bad);
          return;
        }
      }
      // The pages are in the buffer, checked: a write to one of them may go on now. The
      // outermost copy answers faults between its writes (writing to fresh tmpfs pages is
      // the slow part), so a fault waits for one write, not a whole piece.
      batch.forEach((q, k) => {
        for (let off = 0; off < q.len; off += WRITE_BYTES) {
          if (this.depth === 1 && args.protectedPages) this.serve();
          const from = segs[k]!.fileOffset + off;
          writeAll(p.file, data.subarray(from, from + Math.min(WRITE_BYTES, q.len - off)), q.fileOffset + off);
        }
      });
      if (opts.protectedPages) this.unprotect(p, segs);
    }
  }

  /** Reads a batch of protected pages and checks them: the first page no longer as at the freeze, if any. */
  private readChecked(p: Process, args: { segs: Segment[]; data: Buffer }): bigint | undefined {
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

  /** The first page of `s` that is not the protected page of the freeze any more. */
  private check(p: Process, s: { vaddr: bigint; len: number }): bigint | undefined {
    const n = s.len / Number(PAGE);
    const map = Buffer.allocUnsafe(n * 8);
    let got = 0;
    try {
      got = readSync(p.pagemap, map, 0, map.length, Number(s.vaddr / PAGE) * 8);
    } catch {
      return s.vaddr;
    }
    if (got !== map.length) return s.vaddr;
    const bad = firstUnprotected(map);
    return bad >= 0 ? s.vaddr + BigInt(bad) * PAGE : undefined;
  }

  /** Lifts the protection of copied pages (which wakes their writers). */
  private unprotect(p: Process, segs: readonly { vaddr: bigint; len: number }[]): void {
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
   * do). EAGAIN: the process is in the middle of an munmap, mremap or madvise whose event
   * is still to be read or answered: read the events, and try again.
   */
  private unprotectRange(p: Process, range: { start: bigint; len: bigint }): void {
    const until = performance.now() + 10_000;
    for (;;) {
      const err = uffdWriteprotect(p.uffd, { ...range, protect: false });
      if (err === undefined || err === 'ENOENT') return;
      // Its memory is gone (exit, exec): fine once every page is in, else the dump fails.
      if (err === 'ESRCH') {
        if (p.pending.empty) return;
        throw changed(p.pid, range.start);
      }
      if (err !== 'EAGAIN' || performance.now() > until) {
        throw new CkptError('INTERNAL', `Cannot unprotect memory of process ${p.pid} at 0x${range.start.toString(16)}: UFFDIO_WRITEPROTECT: ${err}`);
      }
      this.serve();
    }
  }
}

/** A piece cut into pieces of at most `max` bytes. */
function cutTo(q: Piece, max: number): Piece[] {
  if (q.len <= max) return [q];
  const out: Piece[] = [];
  for (let off = 0; off < q.len; off += max) out.push({ ...q, vaddr: q.vaddr + BigInt(off), len: Math.min(max, q.len - off), fileOffset: q.fileOffset + off });
  return out;
}

/** Whether `pid` still has its memory (not gone, not a zombie). */
function alive(pid: number): boolean {
  try {
    const state = readStat(pid).state;
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

function writeAll(fd: number, data: Buffer, at: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, at + done);
}
