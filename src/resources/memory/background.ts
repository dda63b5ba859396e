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
 *
 * Here: the arming, the freeze and the events; the copy itself is background-copy.ts,
 * the page-file writes background-writer.ts (a worker thread), the VmFlags at the
 * freeze background-areas.ts.
 */
import { CkptError } from '../../common/errors.js';
import { isErrno, NR, pollIn, ptrace, readNonBlocking, decodeUffdMsg, uffdWriteprotect, UFFD_BACKGROUND_FEATURES, UFFD_MSG_SIZE } from '../../sys/index.js';
import { UFFD, uffdioRegister } from '../../sys/ioctl.js';
import { listTasks, openPagemap, readBlockedSyscall, readMaps, readSmaps } from '../../proc/index.js';
import type { DumpContext } from '../types.js';
import { areasWithFlagsBefore } from './background-areas.js';
import { checkInterrupted, takeUserfaultfdWith, type RemoteTask } from '../../infect/index.js';
import type { PageWriter } from '../../images/index.js';
import { MemFile, type PageRun } from './copy.js';
import { PendingPages } from './pending.js';
import { MAX_IOV } from './split.js';
import { hasOwnPages, isShmemArea, type Vma } from './state.js';
import { changed, notProtected, type Range } from './background-pages.js';
import { closeProcess, PageCopier, type Process } from './background-copy.js';

export type { BackgroundStats } from './background-copy.js';

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

export class BackgroundCopy extends PageCopier {
  private readonly procs: Process[] = [];
  /** Until the freeze's protect(): a fault only lifts the protection (nothing is copied before the freeze). */
  private arming = true;
  private readonly msgs = Buffer.alloc(UFFD_MSG_SIZE * 64);

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

  /** Reads what every userfaultfd has (waiting up to `timeoutMs` for something) and answers it. */
  protected serve(timeoutMs = 0): void {
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
}

