/**
 * Serving lazily restored processes' userfaultfds from their page files: on a fault, the
 * 64 KiB around the faulting page at once; once the tree runs, everything else in 2 MiB
 * pieces (prefetch), faults first. It follows each process's own changes to its layout
 * (fork, mremap, munmap, MADV_DONTNEED) as non-cooperative userfaultfd events. Used by
 * ckpt itself from the moment the tree is let go until the lazy-pages server is up, then
 * by the server (server.ts), which takes over what is left (`state`, `adopt`).
 */
import { ImageReader, type PageReader, type RemotePages } from '../../images/index.js';
import {
  closeFd, decodeUffdMsg, kill, mapFileReadOnly, pidfdOpen, readNonBlocking, SIG, UFFD_MSG_SIZE, uffdCopy, uffdCopyFrom, uffdWake, uffdZeropage, unmap,
  type UffdMsg,
} from '../../sys/index.js';
import { nameChildren } from './children.js';
import { PendingPages, type Piece } from './pending.js';
import type { AddRequest, HandedOver, Log } from './protocol.js';

const PAGE = 4096n;
/** Copied around a faulting page: 64 KiB copies reach ~1 GiB/s, 4 KiB ones ~70 MiB/s (issue 14). */
export const FAULT_WINDOW = 64n * 1024n;
/** Prefetch piece: large enough to be fast, small enough that a fault waits at most ~1 ms behind it. */
export const PREFETCH_BYTES = 2 * 1024 * 1024;
/**
 * How pages are copied: 'pread' into a 2 MiB buffer then UFFDIO_COPY from it, or 'mmap':
 * UFFDIO_COPY straight from a MAP_POPULATE mapping of the page file (CKPT_LAZY_FILL, for
 * the bench: docs/performance.md, "Lazy restore", has the numbers; pread won).
 */
const FILL = process.env['CKPT_LAZY_FILL'] === 'mmap' ? 'mmap' : 'pread';

interface Target {
  /** -1 for a process forked after the restore until its pid is found (children.ts), or if never. */
  pid: number;
  /** Forked after the restore: from `forked.parent` (whose pid may not be known yet either), at `forked.since` (performance.now). */
  forked?: { parent: Target | undefined; since: number };
  /** A pidfd of `pid` (readable once it exits), or -1. */
  pidfd: number;
  uffd: number;
  pending: PendingPages;
  /** The page file's id in the image set, and its reader. */
  pages: string | number;
  reader: PageReader;
  /** Faults that met a layout change (EAGAIN) and wait for another try. */
  retry: bigint[];
  faults: number;
  bytes: number;
  /** "every page in" was logged. */
  reported?: boolean;
}

export class Fatal extends Error {}

/** A pidfd of `pid`, or -1 if it is gone already. */
function pidfdOf(pid: number): number {
  try {
    return pidfdOpen(pid);
  } catch {
    return -1;
  }
}

/** Kills processes served (a failure: none may run with pages missing), saying why in the log. */
export function killPids(pids: readonly number[], why: string, log: Log): void {
  for (const pid of pids) {
    try {
      kill(pid, SIG.SIGKILL);
    } catch {
      // already gone
    }
  }
  log(`${why}: killed process${pids.length === 1 ? '' : 'es'} ${pids.join(', ')}`);
}

export class LazyServer {
  private readonly targets: Target[] = [];
  /** FILL 'mmap': each page file mapped whole. */
  private readonly maps = new Map<PageReader, bigint>();
  private readonly buf = Buffer.allocUnsafeSlow(PREFETCH_BYTES);
  private readonly reader: ImageReader;
  private readonly own: boolean;
  private readonly log: Log;
  /** CLOCK_MONOTONIC ns: when the tree was let go (ckpt's clock), and when this engine began to copy. */
  private letGoNs = process.hrtime.bigint();
  private copyingNs = process.hrtime.bigint();
  private copyingCpu = process.cpuUsage();
  private prefetch = false;
  private next = 0;
  /** Called with the userfaultfd of each process forked by a served one (the guard must hold it too). */
  onFork?: (uffd: number) => void;
  /** Called with the pid of such a process once found (the guard must kill it too if the server dies). */
  onPid?: (pid: number) => void;

  /** Page files on a page server: their bytes fetched into them before they are read (not closed here). */
  private readonly remote: RemotePages | undefined;

  /** Serves from the images in `images` (a directory, opened here, or a reader ckpt has open), their page data from `remote` if given. */
  constructor(images: string | ImageReader, args: { log: Log; remote?: RemotePages }) {
    this.own = typeof images === 'string';
    this.reader = typeof images === 'string' ? ImageReader.open(images) : images;
    this.log = args.log;
    this.remote = args.remote;
  }

  /** Takes the userfaultfd of a process being restored (ckpt registered its lazy areas) and what it has to copy. */
  add(req: AddRequest, uffd: number): void {
    const reader = this.reader.pages(req.pages);
    const areas = req.areas.map(([s, e]) => ({ start: BigInt(s), end: BigInt(e) }));
    const pieces: Piece[] = [];
    const runs = reader.layers.flatMap((l) => l.runs);
    for (const a of areas) {
      for (const run of runs) {
        const end = run.vaddr + BigInt(run.nrPages) * PAGE;
        const from = run.vaddr > a.start ? run.vaddr : a.start;
        const to = end < a.end ? end : a.end;
        if (from < to) pieces.push({ start: from, end: to, src: from });
      }
    }
    this.targets.push({ pid: req.pid, pidfd: pidfdOpen(req.pid), uffd, pending: new PendingPages(pieces), pages: req.pages, reader, retry: [], faults: 0, bytes: 0 });
  }

  /** What is left to do, for whoever takes over (`adopt`): the userfaultfds of forked processes go with it, in order. */
  state(): { state: HandedOver; fds: number[] } {
    const hex = (v: bigint) => `0x${v.toString(16)}`;
    const fds = this.targets.filter((t) => t.forked).map((t) => t.uffd);
    const targets = this.targets.map((t) => ({
      pid: t.pid,
      forked: t.forked ? (t.forked.parent?.pid ?? -1) : undefined,
      pages: t.pages,
      pending: t.pending.pieces().map((p): [string, string, string] => [hex(p.start), hex(p.end), hex(p.src)]),
      retry: t.retry.map(hex),
    }));
    return { state: { targets }, fds };
  }

  /** Takes over from ckpt: its pending pages replace what the images say, and the processes forked meanwhile are added. */
  adopt(state: HandedOver, fds: readonly number[]): void {
    this.copyingNs = process.hrtime.bigint();
    this.copyingCpu = process.cpuUsage();
    let k = 0;
    for (const s of state.targets) {
      const pending = new PendingPages(s.pending.map(([a, b, c]) => ({ start: BigInt(a), end: BigInt(b), src: BigInt(c) })));
      const retry = s.retry.map((a) => BigInt(a));
      const known = s.forked === undefined ? this.targets.find((t) => t.pid === s.pid) : undefined;
      if (known) {
        known.pending = pending;
        known.retry = retry;
        continue;
      }
      const uffd = fds[k++];
      if (uffd === undefined) throw new Fatal(`Cannot serve pages: the handover names more forked processes than userfaultfds came with it`);
      const parent = this.targets.find((x) => x.pid > 0 && x.pid === s.forked);
      const forked = { parent, since: performance.now() };
      this.targets.push({ pid: s.pid, pidfd: s.pid > 0 ? pidfdOf(s.pid) : -1, forked, uffd, pending, pages: s.pages, reader: this.reader.pages(s.pages), retry, faults: 0, bytes: 0 });
    }
  }

  /**
   * The tree runs (let go at `letGoNs`, CLOCK_MONOTONIC): copy everything that is left
   * (unless `prefetch` is off: then only what faults).
   */
  go(prefetch: boolean, letGoNs?: bigint): void {
    if (letGoNs !== undefined) this.letGoNs = letGoNs;
    this.prefetch = prefetch;
  }

  get done(): boolean {
    return this.targets.every((t) => t.pending.empty && t.retry.length === 0);
  }

  get uffds(): number[] {
    return this.targets.map((t) => t.uffd);
  }

  /** Pids of the processes served (restored, and forked since once found). */
  get pids(): number[] {
    return this.targets.map((t) => t.pid).filter((p) => p > 0);
  }

  get pidfds(): number[] {
    return this.targets.map((t) => t.pidfd);
  }

  /**
   * Target `i`'s process exited: nothing more to copy into it. Once no restored process
   * is left, what processes forked from them still miss is copied without waiting for
   * their faults (their pids are unknown: the fork event does not say).
   */
  exited(i: number): void {
    const t = this.targets[i]!;
    t.pending.take(0n, 1n << 64n);
    t.retry.length = 0;
    closeFd(t.pidfd);
    t.pidfd = -1;
    if (this.targets.every((x) => x.pidfd < 0)) this.prefetch = true;
  }

  /** poll(2)'s timeout: 0 with work to do, 1 ms while a forked child's pid is looked for, else none. */
  get timeout(): number {
    if (this.targets.some((t) => t.retry.length > 0) || (this.prefetch && !this.done)) return 0;
    return this.unnamed().length > 0 ? 1 : -1;
  }

  private unnamed(): Target[] {
    return this.targets.filter((t) => t.forked?.parent && t.pid < 0);
  }

  /** Finds the pids of processes forked from served ones (the fork event does not say), once their fork is done. */
  private name(): void {
    const unnamed = this.unnamed();
    if (unnamed.length === 0) return;
    const known = new Set(this.targets.map((t) => t.pid).filter((p) => p > 0));
    for (const [i, pid] of nameChildren(unnamed.map((t) => ({ parent: t.forked!.parent!.pid, since: t.forked!.since })), known)) {
      const t = unnamed[i]!;
      if (pid < 0) {
        t.forked!.parent = undefined; // not found: served, but not killed by the guard if the server dies
        continue;
      }
      t.pid = pid;
      t.pidfd = pidfdOf(pid);
      this.log(`process ${t.forked!.parent!.pid} forked process ${pid}`);
      this.onPid?.(pid);
    }
  }

  /** Reads and serves every message waiting on target `i`'s userfaultfd. */
  drain(i: number): void {
    const t = this.targets[i]!;
    const msgs = Buffer.alloc(UFFD_MSG_SIZE * 64);
    for (;;) {
      const n = readNonBlocking(t.uffd, msgs);
      if (n <= 0) return;
      for (let off = 0; off + UFFD_MSG_SIZE <= n; off += UFFD_MSG_SIZE) this.handle(t, decodeUffdMsg(msgs, off));
    }
  }

  private handle(t: Target, m: UffdMsg): void {
    switch (m.event) {
      case 'fault':
        t.faults++;
        this.serveFault(t, m.address);
        if (t.faults === 1 && t.pid > 0) this.log(`process ${t.pid}: first fault served at ${process.hrtime.bigint()} ns (CLOCK_MONOTONIC)`);
        return;
      case 'fork':
        // The child has every page the parent had then, and misses what the parent missed.
        this.targets.push({
          pid: -1, pidfd: -1, forked: { parent: t, since: performance.now() }, uffd: m.ufd, pending: t.pending.clone(), pages: t.pages, reader: t.reader, retry: [], faults: 0, bytes: 0,
        });
        this.onFork?.(m.ufd);
        return;
      case 'remap':
        t.pending.move(m);
        return;
      case 'remove':
      case 'unmap':
        t.pending.take(m.start, m.end);
        return;
      default:
        throw new Fatal(`Cannot serve pages of process ${t.pid}: unexpected userfaultfd event 0x${m.code.toString(16)}`);
    }
  }

  private serveFault(t: Target, address: bigint): void {
    const page = address & ~(PAGE - 1n);
    const from = address & ~(FAULT_WINDOW - 1n);
    const hadPage = t.pending.has(page);
    if (!this.copy(t, t.pending.take(from, from + FAULT_WINDOW))) {
      t.retry.push(address);
      return;
    }
    if (hadPage) return; // the copy woke it
    // Not saved (never written before the dump, or discarded since): a zero page.
    const z = uffdZeropage(t.uffd, { start: page, len: Number(PAGE) });
    if (z.error === 'EAGAIN') t.retry.push(address);
    else if (z.error === 'EEXIST') uffdWake(t.uffd, { start: page, len: Number(PAGE) });
    else if (z.error && z.error !== 'ENOENT' && z.error !== 'ESRCH') throw new Fatal(`Cannot serve pages of process ${t.pid}: UFFDIO_ZEROPAGE at 0x${page.toString(16)}: ${z.error}`);
  }

  /** Copies pieces in; false if the layout is changing (EAGAIN): what is left goes back. */
  private copy(t: Target, pieces: Piece[]): boolean {
    for (let k = 0; k < pieces.length; k++) {
      const p = pieces[k]!;
      const len = Number(p.end - p.start);
      const from = this.source(t, { src: p.src, len });
      let off = 0;
      while (off < len) {
        const dst = p.start + BigInt(off);
        const r = typeof from === 'bigint' ? uffdCopyFrom(t.uffd, { dst, src: from + BigInt(off), len: len - off }) : uffdCopy(t.uffd, { dst, src: from.subarray(off), len: len - off });
        off += r.done;
        t.bytes += r.done;
        if (!r.error) continue;
        if (r.error === 'EEXIST') {
          off += Number(PAGE);
        } else if (r.error === 'EAGAIN') {
          t.pending.put([{ start: p.start + BigInt(off), end: p.end, src: p.src + BigInt(off) }, ...pieces.slice(k + 1)]);
          return false;
        } else if (r.error === 'ESRCH') {
          // The process is gone: nothing more to fill.
          t.pending.take(0n, 1n << 64n);
          return true;
        } else if (r.error === 'ENOENT') {
          // The area is gone (unmapped in a way no event reported): nothing to fill there.
          break;
        } else {
          throw new Fatal(`Cannot serve pages of process ${t.pid}: UFFDIO_COPY at 0x${(p.start + BigInt(off)).toString(16)}: ${r.error}`);
        }
      }
    }
    return true;
  }

  /**
   * The saved bytes of [src, src+len): read into the buffer (FILL 'pread', the default),
   * or the address of the page file's bytes in a mapping of it (FILL 'mmap').
   */
  private source(t: Target, args: { src: bigint; len: number }): Buffer | bigint {
    const lacks = () => new Fatal(`Cannot serve pages of process ${t.pid}: ${t.reader.path} lacks pages at 0x${args.src.toString(16)}`);
    if (this.remote) this.fetch(t, args);
    if (FILL === 'mmap') {
      const [at, more] = t.reader.locate(args.src, args.len);
      if (!at || more || at.len !== args.len) throw lacks();
      let base = this.maps.get(at.reader);
      if (base === undefined) {
        base = mapFileReadOnly(at.reader.fd(), { len: at.reader.size, populate: true });
        this.maps.set(at.reader, base);
      }
      return base + BigInt(at.pos);
    }
    const data = this.buf.subarray(0, args.len);
    const found = t.reader.readAt(args.src, data);
    if (found.reduce((n, f) => n + f.len, 0) !== args.len) throw lacks();
    return data;
  }

  /** Fetches the saved bytes of [src, src+len) from the page server into the page files (one that fails is fatal: the source is gone). */
  private fetch(t: Target, args: { src: bigint; len: number }): void {
    try {
      for (const at of t.reader.locate(args.src, args.len)) this.remote!.ensure(at.reader.path, at.pos, at.len);
    } catch (e) {
      throw new Fatal(`Cannot serve pages of process ${t.pid}: ${(e as Error).message}`);
    }
  }

  /** Pids of forked processes, faults that waited for a layout change, then one prefetch piece (round robin over the processes). */
  work(): void {
    this.name();
    for (const t of this.targets) {
      const again = t.retry.splice(0);
      for (const a of again) this.serveFault(t, a);
      // Faults may have taken the last pages before the prefetch did.
      if (t.pending.empty && t.pid > 0 && t.pidfd >= 0) this.report(t);
    }
    if (!this.prefetch) return;
    for (let k = 0; k < this.targets.length; k++) {
      const t = this.targets[(this.next + k) % this.targets.length]!;
      if (t.pending.empty) continue;
      this.next = (this.next + k + 1) % this.targets.length;
      this.copy(t, t.pending.takeFront(PREFETCH_BYTES));
      if (t.pending.empty && t.pid > 0) this.report(t);
      return;
    }
  }

  private report(t: Target): void {
    if (t.reported) return;
    t.reported = true;
    const now = process.hrtime.bigint();
    const ms = Number(now - this.letGoNs) / 1e6;
    const copyMs = Number(now - this.copyingNs) / 1e6;
    const cpu = process.cpuUsage(this.copyingCpu);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const mib = t.bytes / 1048576;
    this.log(`process ${t.pid}: every page in, ${mib.toFixed(1)} MiB, ${ms.toFixed(1)} ms after it was let go (copied at ${(mib / (copyMs / 1000)).toFixed(0)} MiB/s in ${copyMs.toFixed(1)} ms, ${cpuMs.toFixed(1)} ms of CPU), ${t.faults} faults`);
  }

  close(): void {
    for (const t of this.targets) {
      closeFd(t.uffd);
      if (t.pidfd >= 0) closeFd(t.pidfd);
    }
    for (const [r, base] of this.maps) unmap(base, r.size);
    this.maps.clear();
    if (this.own) this.reader.close();
  }
}

