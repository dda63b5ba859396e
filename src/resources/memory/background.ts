/**
 * Background snapshot (`dump -R --background`): the tree is frozen only to collect
 * everything but page contents; its private memory is write-protected with a synchronous
 * userfaultfd (MODE_WP, no WP_ASYNC), then it runs on while ckpt copies the pages. A
 * write to a page not yet copied waits in the kernel and sends ckpt a fault: ckpt copies
 * the pages pending around it first (FAULT_BYTES), then lifts their protection, which
 * wakes the writer. Pages are unprotected as soon as they are copied, so later writes do
 * not fault.
 *
 * Nothing that visits every page happens while frozen (docs/architecture.md):
 * - **arm** (a short stop before the freeze): a userfaultfd per process, its private
 *   areas registered; then, the tree running, every area is write-protected a slice at a
 *   time (`protectArmed`), a fault lifting the protection of its MiB (`ARM_GRANULE`);
 * - **at the freeze** (`protect`): only what was written since is protected again
 *   (PAGEMAP_SCAN lists the present pages that are not protected: a kernel walk, no copy
 *   of pagemap); areas mapped since are registered and protected whole;
 * - the writable areas registered before the freeze are not planned from pagemap (`scan`
 *   pieces): their pages are chosen as they are copied, as those still present and
 *   protected (a page populated since the freeze is not protected: it was empty then),
 *   and get their place in the page file then (PageWriter.allocate/placed).
 *
 * Every copy is checked after it is read and before its protection goes: pagemap must
 * still show each page present (or swapped) and write-protected; a scanned range must
 * still be one registered area. A protected page cannot be written; one unmapped or
 * discarded (munmap, MADV_DONTNEED: the unmap and remove events), or replaced (exec,
 * exit) fails that check, and the dump fails naming the page: the image would not be
 * the memory of the freeze. mremap moves what is pending (remap event).
 *
 * If ckpt dies, its copies of the userfaultfds are its only ones (the target closed its
 * own at once, and closes it by itself if ckpt dies before: infect/uffd.ts): the kernel
 * releases them, which unregisters every area, drops the protection and wakes the
 * writers waiting. Nothing is left behind.
 */
import { closeSync, readSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { isErrno, NR, pollIn, ptrace, readNonBlocking, decodeUffdMsg, uffdWriteprotect, UFFD_BACKGROUND_FEATURES, UFFD_MSG_SIZE } from '../../sys/index.js';
import { UFFD, uffdioRegister } from '../../sys/ioctl.js';
import { listTasks, openPagemap, readBlockedSyscall, readMaps, readSmaps, type SmapsEntry } from '../../proc/index.js';
import type { DumpContext } from '../types.js';
import { areasWithFlagsBefore } from './background-areas.js';
import { checkInterrupted, takeUserfaultfdWith, type RemoteTask } from '../../infect/index.js';
import type { PageWriter } from '../../images/index.js';
import { MemFile, readUnit, type PageRun } from './copy.js';
import { firstUnprotected, protectedRuns } from './pages.js';
import { PendingPages, type Piece } from './pending.js';
import { MAX_IOV, type Segment } from './split.js';
import { PageFileWriter, SLOT_BYTES } from './background-writer.js';
import { hasOwnPages, isShmemArea, type Vma } from './state.js';
import { changed, cutTo, hasHole, notProtected, type Range } from './background-pages.js';

const PAGE = 4096n;
/** madvise advice that discards pages: MADV_DONTNEED, MADV_FREE, MADV_REMOVE, MADV_DONTNEED_LOCKED. */
const DISCARDS = new Set([4, 8, 9, 24]);
/** Below rsp, where a call's frame may go (the x86-64 red zone and more). */
const REDZONE = 4096n;
/** Copied between two looks at the faults: a fault waits for at most this much. */
export const BACKGROUND_BYTES = 512 * 1024;
/** Copied for a fault, around the page: the program waits for it. */
export const FAULT_BYTES = 64 * 1024;
/** Write-protected in one call while the tree runs before the freeze: faults are answered between two. */
const ARM_SLICE = 8n * 1024n * 1024n;
/** Unprotected for a fault before the freeze (the freeze protects it again): a writer going through memory faults once a MiB. */
const ARM_GRANULE = 1024n * 1024n;
/** Copies begun again after an mremap moved their pages, before a dump gives up. */
const MAX_RETRIES = 10_000;
/** How long a copy whose pages went waits for the mremap event that would say where to. */
const REMAP_WAIT_MS = 200;

interface Process {
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


export class BackgroundCopy {
  private readonly procs: Process[] = [];
  private readonly msgs = Buffer.alloc(UFFD_MSG_SIZE * 64);
  /** Writes the pages to the page files (a worker thread): started now, it is up by the time pages are copied. */
  private readonly writer = new PageFileWriter();
  /** Remap events read so far (a copy under way moves its pieces by those read while it ran), and copies begun again. */
  private readonly remapLog: { pid: number; from: bigint; to: bigint; len: bigint }[] = [];
  /** Copies under way (a fault served while another waits to unprotect its pages). */
  private depth = 0;
  private retries = 0;
  /** Copying the pages a thread is about to discard: no event is read until they are all in (copyBeforeDiscard). */
  private holding = 0;
  /** Until the freeze's protect(): a fault only lifts the protection (nothing is copied before the freeze). */
  private arming = true;
  readonly stats: BackgroundStats = { faults: 0, frozenPages: 0, protectMs: 0, armMs: 0, scannedPages: 0, copyMs: 0, flagsMs: 0, smapsAtFreeze: 0 };

  /**
   * Before the freeze, process `pid` stopped for a moment: its userfaultfd, and every
   * private area registered (protected later, the tree running: protectArmed). A process
   * with a userfaultfd of its own is left to the freeze, which refuses it.
   */
  arm(pid: number, remote: RemoteTask): void {
    // maps, not smaps: the process is stopped, and smaps walks every page (background-areas.ts).
    const maps = readMaps(pid);
    const p = this.open(pid, remote);
    for (const e of maps) {
      if (e.shared) continue;
      try {
        uffdioRegister(p.uffd, { start: e.start, end: e.end, mode: UFFD.REGISTER_MODE_WP });
        p.armed.push({ start: e.start, end: e.end });
      } catch (err) {
        // Registered with a userfaultfd of its own (EBUSY): left to the freeze, which refuses it.
        if (isErrno(err, 'EBUSY')) {
          this.drop(p);
          return;
        }
        // not registrable (a private file mapping, the vDSO): planned and protected at the freeze
      }
    }
  }

  /**
   * The tree running, its areas registered and not protected yet (no writer waits): each
   * armed process's smaps, whose VmFlags the freeze takes for the areas still the same
   * (background-areas.ts).
   */
  readFlags(): void {
    const t0 = performance.now();
    for (const p of this.procs) {
      try {
        p.before = readSmaps(p.pid);
      } catch {
        // gone: the freeze says so
      }
    }
    this.stats.flagsMs = performance.now() - t0;
  }

  /** At the freeze: the areas of `ctx.pid` with the VmFlags read before, or undefined (smaps is read now). */
  areasAtFreeze(ctx: DumpContext): ReturnType<typeof areasWithFlagsBefore> {
    // Every unmap and remap event is read by now (the thread that caused one waits until it is).
    this.serve();
    const p = this.procs.find((q) => q.pid === ctx.pid);
    const read = p?.before ? areasWithFlagsBefore(ctx, { before: p.before, replaced: p.replaced }) : undefined;
    if (!read) this.stats.smapsAtFreeze++;
    return read;
  }

  /**
   * At the freeze, before ckpt works on process `pid` (threads `tids`): the protection
   * goes from what ckpt and the kernel write while ckpt injects calls (each thread's
   * stack, where the calls' frames and buffers go, and its rseq area, which the kernel
   * updates at every return from a call), or they would wait for ckpt, which waits for
   * them. protect() protects them again (they are present and not protected).
   */
  spare(pid: number, tids: readonly number[]): void {
    const p = this.procs.find((q) => q.pid === pid);
    if (!p || p.armed.length === 0) return;
    const maps = readMaps(pid);
    for (const tid of tids) {
      const rsp = ptrace.getRegs(tid).rsp;
      const stack = maps.find((m) => m.start <= rsp - REDZONE && rsp - REDZONE < m.end) ?? maps.find((m) => m.start <= rsp && rsp < m.end);
      if (stack) this.unprotectRange(p, { start: stack.start, len: stack.end - stack.start });
      const rseq = ptrace.getRseqConfiguration(tid);
      if (rseq.abiPointer !== 0n) {
        const from = rseq.abiPointer & ~(PAGE - 1n);
        const to = (rseq.abiPointer + BigInt(Math.max(rseq.abiSize, 32)) + PAGE - 1n) & ~(PAGE - 1n);
        this.unprotectRange(p, { start: from, len: to - from });
      }
    }
  }

  /** Whether `pid` was armed: its areas showing VmFlags `uw` are ckpt's registrations. */
  isArmed(pid: number): boolean {
    return this.procs.some((p) => p.pid === pid && p.armed.length > 0);
  }

  /** The tree runs: write-protects every armed area a slice at a time, answering faults between slices. */
  protectArmed(): void {
    const t0 = performance.now();
    for (const p of this.procs) {
      for (const a of p.armed) {
        for (let at = a.start; at < a.end; at += ARM_SLICE) {
          this.protectRange(p, { start: at, end: at + ARM_SLICE < a.end ? at + ARM_SLICE : a.end });
          this.serve();
        }
      }
    }
    this.stats.armMs = performance.now() - t0;
  }

  /** While the tree is being seized for the freeze: a thread waiting on ckpt stops only once answered. */
  serveWhileSeizing(): void {
    this.serve();
  }

  private open(pid: number, remote: RemoteTask): Process {
    let uffd: number;
    try {
      uffd = takeUserfaultfdWith(remote, { features: UFFD_BACKGROUND_FEATURES, userModeOnly: false });
    } catch (e) {
      if (!isErrno(e, 'EPERM')) throw e;
      throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid} in the background: it may not make a userfaultfd that also stops kernel writes (it needs CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd = 1); dump it without --background`, { cause: e });
    }
    const p: Process = { pid, uffd, armed: [], again: [], areas: [], replaced: [], pending: new PendingPages(), pw: undefined, file: -1, pagemap: -1, mem: new MemFile(pid) };
    this.procs.push(p);
    p.pagemap = openPagemap(pid);
    return p;
  }

  private drop(p: Process): void {
    this.procs.splice(this.procs.indexOf(p), 1);
    closeProcess(p);
  }

  /**
   * While process `pid` is frozen: lays out its page file (`runs`, planned from pagemap;
   * `lazy`, areas registered before the freeze, chosen as they are copied) and registers
   * its private areas holding them that are not registered yet (`registered`: by start).
   * An area the kernel will not register is copied now.
   */
  add(pid: number, args: { remote: RemoteTask; runs: readonly PageRun[]; vmas: readonly Vma[]; lazy: readonly Vma[]; registered: ReadonlySet<bigint>; pw: PageWriter }): void {
    let p = this.procs.find((q) => q.pid === pid);
    // Nothing of its arming left (it exec'd since: a new mm): a new userfaultfd.
    if (p && args.registered.size === 0) {
      this.drop(p);
      p = undefined;
    }
    if (!p && args.runs.length === 0) return;
    p ??= this.open(pid, args.remote);
    p.pw = args.pw;
    for (const r of args.runs) {
      const at = args.pw.reserve(r.vaddr, r.len);
      p.file = at.fd;
      p.pending.push({ vaddr: r.vaddr, len: r.len, fileOffset: at.fileOffset, viaMem: r.viaMem });
    }
    p.pending.putBack(args.lazy.map((v) => ({
      vaddr: v.start, len: Number(v.end - v.start), fileOffset: -1, viaMem: false,
      scan: { anonOnly: v.kind === 'file' || isShmemArea(v), readable: (v.prot & 1) !== 0 },
    })));
    for (const v of args.vmas) {
      if (!hasOwnPages(v) || !p.pending.has(v.start, v.end)) continue;
      if (args.registered.has(v.start)) {
        // Registered since the arming: again (a no-op), in case it is an area mapped anew since
        // with the same maps line (background-areas.ts reads no VmFlags at the freeze).
        try {
          uffdioRegister(p.uffd, { start: v.start, end: v.end, mode: UFFD.REGISTER_MODE_WP });
        } catch (e) {
          throw new CkptError('INTERNAL', `Cannot dump process ${pid} in the background: cannot register 0x${v.start.toString(16)}-0x${v.end.toString(16)} again`, { cause: e });
        }
        p.again.push({ start: v.start, end: v.end });
        continue;
      }
      try {
        uffdioRegister(p.uffd, { start: v.start, end: v.end, mode: UFFD.REGISTER_MODE_WP });
        p.areas.push({ start: v.start, end: v.end });
      } catch {
        this.copyFrozen(p, v);
      }
    }
  }

  /**
   * The last thing before the tree runs again: write-protects what was written since the
   * arming, and the areas registered at the freeze. Not earlier: ckpt's own writes into a
   * process it still works on (an injected call's arguments on its stack) would wait on
   * the protection, for ckpt itself.
   */
  protect(): void {
    const t0 = performance.now();
    for (const p of this.procs) {
      if (!p.pw) continue;
      for (const a of p.again) {
        for (const r of notProtected(p.pagemap, a)) {
          if (!this.protectRange(p, r)) throw new CkptError('INTERNAL', `Cannot dump process ${p.pid} in the background: cannot write-protect 0x${r.start.toString(16)}-0x${r.end.toString(16)} again`);
        }
      }
      for (const a of p.areas) {
        if (!this.protectRange(p, a)) this.copyFrozen(p, a);
      }
    }
    // Processes armed but gone by the freeze (exited, or not in the tree any more).
    for (const p of this.procs.filter((q) => !q.pw)) this.drop(p);
    this.arming = false;
    this.stats.protectMs = performance.now() - t0;
  }

  /** UFFDIO_WRITEPROTECT on: false when the kernel refuses (no area there, the process gone). */
  private protectRange(p: Process, r: Range): boolean {
    for (;;) {
      const err = uffdWriteprotect(p.uffd, { start: r.start, len: r.end - r.start, protect: true });
      if (err === undefined) return true;
      if (err !== 'EAGAIN') return false;
      // An event (mremap, madvise, munmap) is being delivered: read it, and try again.
      this.serve();
    }
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
        // Faults are answered while the writer frees a buffer (nothing is taken out meanwhile).
        while (!this.writer.hasFree) this.serve(1);
        // A scanned piece alone (see copy()).
        const pieces = p.pending.takeFirst({ bytes: BACKGROUND_BYTES, maxPieces: p.pending.firstScanned ? 1 : MAX_IOV });
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
    this.writer.drain();
    for (const p of this.procs) p.pw?.close();
    this.close();
  }

  /**
   * Ends the protection: closing ckpt's userfaultfds (the only ones) unregisters every
   * area and wakes every writer still waiting. Safe to call more than once.
   */
  close(): void {
    // First: no write may go to a page file's fd once it is closed (its number reused).
    this.writer.stop();
    for (const p of this.procs) closeProcess(p);
  }

  /**
   * Whether an mremap event comes: the kernel moves the pages first and queues the event
   * after, so a copy can find its pages gone a moment before their event is there.
   */
  private awaitRemap(): boolean {
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
  private retry(p: Process, args: { pieces: readonly Piece[]; since: number; bad: bigint }): void {
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

  /** Reads what every userfaultfd has (waiting up to `timeoutMs` for something) and answers it. */
  private serve(timeoutMs = 0): void {
    if (this.holding > 0) return;
    const fds = this.procs.filter((p) => p.uffd >= 0);
    if (fds.length === 0) return;
    const ready = pollIn(fds.map((p) => p.uffd), timeoutMs);
    fds.forEach((p, i) => {
      if (ready[i] === 0) return;
      if (!this.arming && !p.pending.empty) this.copyBeforeDiscard(p);
      for (;;) {
        const n = readNonBlocking(p.uffd, this.msgs);
        if (n <= 0) break;
        for (let off = 0; off + UFFD_MSG_SIZE <= n; off += UFFD_MSG_SIZE) this.answer(p, off);
      }
    });
  }

  /**
   * A thread in madvise(MADV_DONTNEED, MADV_FREE, MADV_REMOVE) waits until ckpt reads its
   * remove event, and discards the pages right after: the event cannot be read without
   * letting it go. So before anything is read, the pending pages of the range each such
   * thread names (/proc/PID/task/TID/syscall: the call it is blocked in) are copied.
   */
  private copyBeforeDiscard(p: Process): void {
    let tids: number[];
    try {
      tids = listTasks(p.pid);
    } catch {
      return;
    }
    for (const tid of tids) {
      const call = readBlockedSyscall(p.pid, tid);
      if (!call || call.nr !== NR.madvise || !DISCARDS.has(Number(call.args[2]))) continue;
      const start = call.args[0]! & ~(PAGE - 1n);
      const end = (call.args[0]! + call.args[1]! + PAGE - 1n) & ~(PAGE - 1n);
      // Nothing is read from the userfaultfds meanwhile (that would let the thread go), so the
      // copied pages keep their protection (an unprotect would wait for the event: EAGAIN)
      // until the discard takes them; a write that waits on one meanwhile is a fault, answered
      // once read.
      this.holding++;
      try {
        for (let pieces = p.pending.take(start, end); pieces.length > 0; pieces = p.pending.take(start, end)) this.copy(p, pieces, { protectedPages: true });
      } finally {
        this.holding--;
      }
    }
  }

  private answer(p: Process, off: number): void {
    const m = decodeUffdMsg(this.msgs, off);
    if (this.arming) {
      // Before the freeze nothing is copied: a write lifts the protection of its MiB, and the
      // freeze protects again what was written. An area unmapped or moved may have been mapped
      // anew since readFlags: its VmFlags are read at the freeze (background-areas.ts).
      if (m.event === 'fault') this.liftArmed(p, m.address);
      else if (m.event === 'unmap') p.replaced.push({ start: m.start, end: m.end });
      else if (m.event === 'remap') p.replaced.push({ start: m.from, end: m.from + m.len }, { start: m.to, end: m.to + m.len });
      return;
    }
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
      this.remapLog.push({ pid: p.pid, from: m.from, to: m.to, len: m.len });
      p.pending.move(m);
    } else if (m.event === 'remove' || m.event === 'unmap') {
      // remove (MADV_DONTNEED) comes just before the zap, which follows its reading: what is
      // still pending there was missed by copyBeforeDiscard (a process_madvise from outside,
      // or a call made since). The pages may be gone by now.
      const pieces = p.pending.take(m.start, m.end);
      // An area not planned at the freeze: which of its pages were there is known only by
      // looking, and they may be gone already.
      const scanned = pieces.find((q) => q.scan);
      if (scanned) throw changed(p.pid, scanned.vaddr);
      if (pieces.length > 0) this.copy(p, pieces, { protectedPages: true });
    }
  }

  /** A fault before the freeze: the protection of the armed MiB around it goes. */
  private liftArmed(p: Process, address: bigint): void {
    const a = p.armed.find((r) => r.start <= address && address < r.end);
    const from = address & ~(ARM_GRANULE - 1n);
    const start = a && a.start > from ? a.start : from;
    const end = a && a.end < from + ARM_GRANULE ? a.end : from + ARM_GRANULE;
    // ENOENT (moved or gone since the arming): the page alone.
    if (uffdWriteprotect(p.uffd, { start, len: end - start, protect: false }) !== undefined) {
      uffdWriteprotect(p.uffd, { start: address & ~(PAGE - 1n), len: PAGE, protect: false });
    }
  }

  /** Reads `pieces`, checks they are still the pages of the freeze, writes them to their places, unprotects them. */
  private copy(p: Process, pieces: readonly Piece[], opts: { protectedPages: boolean }): void {
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
  private copyScanned(p: Process, piece: Piece): void {
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

  private allocate(p: Process, bytes: number): number {
    const at = p.pw!.allocate(bytes);
    p.file = at.fd;
    return at.fileOffset;
  }

  /**
   * Unprotects a scanned range whole (a page not chosen may be a file page still
   * protected); false when some of it is no registered area any more (unmapped, or mapped
   * anew since the freeze).
   */
  private stillRegistered(p: Process, r: { start: bigint; len: bigint }): boolean {
    const err = this.holding > 0 ? undefined : this.unprotectRange(p, r, { missing: true });
    return err === undefined && !hasHole(p.pagemap, { start: r.start, end: r.start + r.len });
  }

  /**
   * Copies planned pieces (or pieces chosen from a scan: `scanned`); false when a page is
   * not the page of the freeze any more (what is left is pending again, but for `scanned`).
   */
  private copyWith(p: Process, args: { pieces: readonly Piece[]; protectedPages: boolean; scanned?: boolean }): boolean {
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

  /** pagemap entries of `s`; undefined when they cannot be read (the process is gone). */
  private pagemapOf(p: Process, s: { vaddr: bigint; len: number }): Buffer | undefined {
    const map = Buffer.allocUnsafe((s.len / Number(PAGE)) * 8);
    try {
      return readSync(p.pagemap, map, 0, map.length, Number(s.vaddr / PAGE) * 8) === map.length ? map : undefined;
    } catch {
      return undefined;
    }
  }

  /** The first page of `s` that is not the protected page of the freeze any more. */
  private check(p: Process, s: { vaddr: bigint; len: number }): bigint | undefined {
    const map = this.pagemapOf(p, s);
    if (!map) return s.vaddr;
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
   * do; returned when `missing` asks). EAGAIN: the process is in the middle of an munmap,
   * mremap or madvise whose event is still to be read or answered: read the events, and
   * try again.
   */
  private unprotectRange(p: Process, range: { start: bigint; len: bigint }, opts: { missing?: boolean } = {}): 'ENOENT' | undefined {
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

function closeProcess(p: Process): void {
  if (p.uffd >= 0) closeSync(p.uffd);
  if (p.pagemap >= 0) closeSync(p.pagemap);
  p.mem.close();
  p.uffd = -1;
  p.pagemap = -1;
}
