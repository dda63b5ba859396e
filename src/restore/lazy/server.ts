/**
 * The lazy-pages server: a process of its own (started by a lazy restore, it outlives
 * ckpt), which holds the userfaultfd of every lazily restored process and copies its
 * pages in from the page file: on a fault, the 64 KiB around the faulting page at once;
 * once the tree runs, everything else in 2 MiB pieces (prefetch), faults first. It
 * follows the process's own changes to its layout (fork, mremap, munmap,
 * MADV_DONTNEED) as non-cooperative userfaultfd events, and exits once every saved
 * page is in, which drops the registrations. One synchronous poll loop, no event loop:
 * a fault is a thread waiting.
 *
 * Any failure (an unreadable page file, a copy the kernel refuses) kills every process
 * it serves, with the reason in the log: a process must not run on with pages missing.
 *
 * fds: 0 commands from the restore (JSON lines), 1 answers, 2 the log, 3 a pipe to the
 * guard (guard.ts), which is told "done" when the job is over.
 */
import { closeSync, writeSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { ImageReader, type PageReader } from '../../images/index.js';
import {
  closeFd, decodeUffdMsg, kill, pidfdOpen, pollIn, readNonBlocking, SIG, UFFD_LAZY_FEATURES, UFFD_MSG_SIZE,
  uffdCopy, uffdRegister, uffdWake, uffdZeropage, type UffdMsg,
} from '../../sys/index.js';
import { uffdioApi } from '../../sys/ioctl.js';
import { grabFd } from '../../resources/transfer.js';
import { PendingPages, type Piece } from './pending.js';
import { AddRequest, LineReader, type Log } from './protocol.js';

const PAGE = 4096n;
/** Copied around a faulting page: 64 KiB copies reach ~1 GiB/s, 4 KiB ones ~70 MiB/s (issue 14). */
export const FAULT_WINDOW = 64n * 1024n;
/** Prefetch piece: large enough to be fast, small enough that a fault waits at most ~1 ms behind it. */
export const PREFETCH_BYTES = 2 * 1024 * 1024;

interface Target {
  /** -1 for a process forked after the restore (the fork event does not say its pid). */
  pid: number;
  /** A pidfd of `pid` (readable once it exits), or -1. */
  pidfd: number;
  uffd: number;
  pending: PendingPages;
  reader: PageReader;
  /** Faults that met a layout change (EAGAIN) and wait for another try. */
  retry: bigint[];
  faults: number;
  bytes: number;
}

class Fatal extends Error {}

export class LazyServer {
  private readonly targets: Target[] = [];
  private readonly buf = Buffer.allocUnsafeSlow(PREFETCH_BYTES);
  private readonly reader: ImageReader;
  private readonly started = performance.now();
  private goAt = 0;
  private prefetch = false;
  private next = 0;

  constructor(
    imagesDir: string,
    private readonly log: Log,
  ) {
    this.reader = ImageReader.open(imagesDir);
  }

  /** Takes the userfaultfd of a process being restored and registers its lazy areas. */
  add(req: AddRequest): void {
    const uffd = grabFd(req.from, req.fd);
    const reader = this.reader.pages(req.pages);
    const areas = req.areas.map(([s, e]) => ({ start: BigInt(s), end: BigInt(e) }));
    const got = uffdioApi(uffd, UFFD_LAZY_FEATURES).features;
    if ((got & UFFD_LAZY_FEATURES) !== UFFD_LAZY_FEATURES) {
      throw new CkptError('UNSUPPORTED', `Cannot serve pages of process ${req.pid}: userfaultfd lacks the fork/remap/remove/unmap events`);
    }
    const pieces: Piece[] = [];
    for (const a of areas) {
      uffdRegister(uffd, { start: a.start, len: a.end - a.start });
      for (const run of reader.runs) {
        const end = run.vaddr + BigInt(run.nrPages) * PAGE;
        const from = run.vaddr > a.start ? run.vaddr : a.start;
        const to = end < a.end ? end : a.end;
        if (from < to) pieces.push({ start: from, end: to, src: from });
      }
    }
    this.targets.push({ pid: req.pid, pidfd: pidfdOpen(req.pid), uffd, pending: new PendingPages(pieces), reader, retry: [], faults: 0, bytes: 0 });
  }

  /** The tree runs: copy everything that is left (unless `prefetch` is off: then only what faults). */
  go(prefetch: boolean): void {
    this.prefetch = prefetch;
    this.goAt = performance.now();
  }

  get done(): boolean {
    return this.targets.every((t) => t.pending.empty && t.retry.length === 0);
  }

  get uffds(): number[] {
    return this.targets.map((t) => t.uffd);
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
    if (this.targets.every((x) => x.pid < 0 || x.pidfd < 0)) this.prefetch = true;
  }

  get busy(): boolean {
    return this.targets.some((t) => t.retry.length > 0) || (this.prefetch && !this.done);
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
        return;
      case 'fork':
        // The child has every page the parent had then, and misses what the parent missed.
        this.targets.push({ pid: -1, pidfd: -1, uffd: m.ufd, pending: t.pending.clone(), reader: t.reader, retry: [], faults: 0, bytes: 0 });
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
      const data = this.buf.subarray(0, len);
      const found = t.reader.readAt(p.src, data);
      if (found.reduce((n, f) => n + f.len, 0) !== len) throw new Fatal(`Cannot serve pages of process ${t.pid}: ${t.reader.path} lacks pages at 0x${p.src.toString(16)}`);
      let off = 0;
      while (off < len) {
        const r = uffdCopy(t.uffd, { dst: p.start + BigInt(off), src: data.subarray(off), len: len - off });
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

  /** Faults that waited for a layout change, then one prefetch piece (round robin over the processes). */
  work(): void {
    for (const t of this.targets) {
      const again = t.retry.splice(0);
      for (const a of again) this.serveFault(t, a);
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
    const ms = performance.now() - (this.goAt || this.started);
    const mib = t.bytes / 1048576;
    this.log(`process ${t.pid}: every page in, ${mib.toFixed(1)} MiB, ${ms.toFixed(1)} ms after it was let go (${(mib / (ms / 1000)).toFixed(0)} MiB/s), ${t.faults} faults`);
  }

  /** Kills every process served (a failure: none may run with pages missing). */
  killAll(why: string): void {
    const pids = this.targets.filter((t) => t.pid > 0).map((t) => t.pid);
    for (const pid of pids) {
      try {
        kill(pid, SIG.SIGKILL);
      } catch {
        // already gone
      }
    }
    this.log(`${why}: killed process${pids.length === 1 ? '' : 'es'} ${pids.join(', ')}`);
  }

  close(): void {
    for (const t of this.targets) {
      closeFd(t.uffd);
      if (t.pidfd >= 0) closeFd(t.pidfd);
    }
    this.reader.close();
  }
}

/** `ckpt lazy-pages serve DIR`: runs the server until every page is in; returns the exit status. */
export function runServer(imagesDir: string, log: Log): number {
  const GUARD_FD = 3;
  let server: LazyServer | undefined;
  let ckptOpen = true;
  let went = false;
  const lines = new LineReader(0);
  try {
    server = new LazyServer(imagesDir, log);
    for (;;) {
      if (!ckptOpen && (server.done || !went)) break;
      const uffds = server.uffds;
      const rev = pollIn([ckptOpen ? 0 : -1, ...uffds, ...server.pidfds], server.busy ? 0 : -1);
      if (rev[0]) {
        const got = lines.read();
        for (const line of got.lines) {
          const msg = JSON.parse(line) as { op: string; prefetch?: boolean };
          if (msg.op === 'go') {
            went = true;
            server.go(msg.prefetch !== false);
            continue;
          }
          try {
            server.add(AddRequest.parse(msg));
            writeSync(1, 'ok\n');
          } catch (e) {
            writeSync(1, `error ${(e as Error).message.replace(/\n/g, ' ')}\n`);
          }
        }
        if (got.eof) ckptOpen = false;
      }
      rev.slice(1, 1 + uffds.length).forEach((r, i) => {
        if (r) server!.drain(i);
      });
      rev.slice(1 + uffds.length).forEach((r, i) => {
        if (r) server!.exited(i);
      });
      server.work();
    }
    writeSync(GUARD_FD, 'done\n');
    closeSync(GUARD_FD);
    server.close();
    return 0;
  } catch (e) {
    const why = e instanceof Fatal || e instanceof CkptError ? e.message : `Cannot serve pages: ${(e as Error).stack ?? String(e)}`;
    if (server) server.killAll(why);
    else log(why);
    return 1;
  }
}
