/**
 * Copying shared memory objects' pages beside the rest of a tree dump (issue 13: a tree
 * sharing 64 MiB was frozen ~3x the time one copy of 64 MiB takes). The first process
 * that maps an object describes it and queues its data ranges here; a worker thread
 * copies them (pread from the object, pwrite into room the object's page file set aside)
 * while the main thread dumps that process's own memory and the other processes. The
 * dump joins before anything is released or committed: the main thread then copies
 * whatever the worker has not taken, so a worker that is slow to start (or never starts)
 * costs no more than copying on the main thread did.
 *
 * The queue is a table in shared memory that both threads claim pieces from with an
 * atomic counter, and both block with Atomics.wait: the dump is synchronous and never
 * runs the event loop, so no message could be received. Node's fs calls work in a worker
 * (fds are the process's), so the worker needs no FFI and no loader: plain JS, eval'd.
 */
import { closeSync, readSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { CkptError } from '../../common/errors.js';
import { NR, rawSyscall, SysError } from '../../sys/index.js';
import type { PageWriter } from '../../images/index.js';
import { tryIo, writeAll } from '../../images/io.js';
import type { ObjectPageSink } from '../types.js';
import { UNIT_BYTES, unitBuffer } from './split.js';

/** Bytes per piece: small enough that the two threads share the tail, big enough to be few. */
const PIECE = 4 * 1024 * 1024;
/** Pieces the table holds (16 GiB of objects in 4 MiB pieces); past it the caller copies itself. */
const MAX_PIECES = 4096;
/** Fields of a piece in the table: source fd, destination fd, source offset, destination offset, length. */
const FIELDS = 5;
/** Header words: pieces posted, claimed, done; the first failed piece + 1; stop. */
const POSTED = 0;
const CLAIMED = 1;
const DONE = 2;
const FAILED = 3;
const STOP = 4;
/** Objects smaller than this are copied at once: not worth a worker. */
const MIN_QUEUED = 2 * 1024 * 1024;
/** A join that sees no piece finish for this long gives up (a worker that died mid-piece). */
const STALL_MS = 60_000;

const WORKER = `
const { workerData } = require('node:worker_threads');
const { readSync, writeSync } = require('node:fs');
const h = new Int32Array(workerData.header);
const t = new Float64Array(workerData.table);
const buf = Buffer.allocUnsafeSlow(${UNIT_BYTES});
for (;;) {
  if (Atomics.load(h, ${STOP}) !== 0) break;
  const posted = Atomics.load(h, ${POSTED});
  const claimed = Atomics.load(h, ${CLAIMED});
  if (claimed >= posted) { Atomics.wait(h, ${POSTED}, posted, 1000); continue; }
  if (Atomics.compareExchange(h, ${CLAIMED}, claimed, claimed + 1) !== claimed) continue;
  const at = claimed * ${FIELDS};
  try {
    const src = t[at], dst = t[at + 1], from = t[at + 2], to = t[at + 3], len = t[at + 4];
    for (let done = 0; done < len;) {
      const n = readSync(src, buf, 0, Math.min(buf.length, len - done), from + done);
      if (n === 0) break;
      for (let w = 0; w < n;) w += writeSync(dst, buf, w, n - w, to + done + w);
      done += n;
    }
  } catch {
    Atomics.compareExchange(h, ${FAILED}, 0, claimed + 1);
  }
  Atomics.add(h, ${DONE}, 1);
  Atomics.notify(h, ${DONE});
}
`;

/** One worker per ckpt process, started the first time an object is queued and kept (unref'd) for the next dump. */
let shared: { worker: Worker; header: Int32Array; table: Float64Array } | undefined;

function copier(): { header: Int32Array; table: Float64Array } | undefined {
  if (shared) return shared;
  try {
    const header = new Int32Array(new SharedArrayBuffer(8 * 4));
    const table = new Float64Array(new SharedArrayBuffer(MAX_PIECES * FIELDS * 8));
    const worker = new Worker(WORKER, { eval: true, execArgv: [], workerData: { header: header.buffer, table: table.buffer }, stdout: false, stderr: false });
    worker.unref();
    // Its errors would arrive through the event loop, which a dump does not run: the join copies what it left.
    worker.on('error', () => {});
    shared = { worker, header, table };
  } catch {
    return undefined; // no worker: the caller copies itself
  }
  return shared;
}

/** Copies `len` bytes at `from` in fd `src` to `to` in fd `dst` (the source may end early: the rest stays zeros). */
function copyRange(args: { src: number; dst: number; from: number; to: number; len: number }): void {
  const buf = unitBuffer();
  tryIo('Cannot copy the pages of a shared memory object into its page file', () => {
    for (let done = 0; done < args.len;) {
      const n = readSync(args.src, buf, 0, Math.min(buf.length, args.len - done), args.from + done);
      if (n === 0) break;
      writeAll(args.dst, buf.subarray(0, n), args.to + done);
      done += n;
    }
  });
}

/** The copies one dump queued: joined (or cancelled) before the dump releases anything. */
export class ObjectCopies {
  private fds: number[] = [];
  /** Run after the join, in order (the page files' close: fsync and their pagemap). */
  private after: (() => void)[] = [];
  /** This dump queued pieces (the table's counters are then its own until the join). */
  private queued = false;

  /**
   * Copies `ranges` of the object open at `fd` into `dst` at the given offsets: queued
   * for the worker (a dup of `fd` is kept until the join; true), or now when the object
   * is small, the table full or no worker could start.
   */
  private add(fd: number, args: { dst: number; ranges: readonly { from: number; to: number; len: number }[] }): boolean {
    const total = args.ranges.reduce((n, r) => n + r.len, 0);
    const c = total >= MIN_QUEUED ? copier() : undefined;
    if (c && this.queue(c, fd, args)) return true;
    for (const r of args.ranges) copyRange({ src: fd, dst: args.dst, ...r });
    return false;
  }

  private queue(c: { header: Int32Array; table: Float64Array }, fd: number, args: { dst: number; ranges: readonly { from: number; to: number; len: number }[] }): boolean {
    const h = c.header;
    if (!this.queued) {
      // Another dump's copies in flight (dumps in two threads?): not ours to wait for.
      if (Atomics.load(h, DONE) !== Atomics.load(h, POSTED)) return false;
      // The worker claims only while claimed < posted: posted goes to 0 first.
      Atomics.store(h, POSTED, 0);
      Atomics.store(h, CLAIMED, 0);
      Atomics.store(h, DONE, 0);
      Atomics.store(h, FAILED, 0);
    }
    const pieces = args.ranges.reduce((n, r) => n + Math.ceil(r.len / PIECE), 0);
    const posted = Atomics.load(h, POSTED);
    if (posted + pieces > MAX_PIECES) return false;
    const r = rawSyscall(NR.dup, [fd]);
    if (r.ret === -1n) throw new SysError('dup', r.errno);
    const src = Number(r.ret);
    this.fds.push(src);
    this.queued = true;
    let at = posted;
    for (const range of args.ranges) {
      for (let off = 0; off < range.len; off += PIECE) {
        c.table.set([src, args.dst, range.from + off, range.to + off, Math.min(PIECE, range.len - off)], at * FIELDS);
        at++;
      }
    }
    Atomics.store(h, POSTED, at);
    Atomics.notify(h, POSTED);
    return true;
  }

  /**
   * An object's page sink over page writer `pw` (no checksums, a local file) whose
   * copyLater sets room aside for every range, records it, and queues the copy; the page
   * file is closed at the join.
   */
  sink(pw: PageWriter): ObjectPageSink {
    let later = false;
    return {
      append: (offset, data) => pw.append(offset, data),
      copyLater: (fd, ranges) => {
        const total = ranges.reduce((n, r) => n + r.len, 0);
        if (total === 0) return;
        const { fd: dst, fileOffset } = pw.allocate(total);
        let to = fileOffset;
        const placed = ranges.map((r) => {
          pw.placed(BigInt(r.offset), { len: r.len, fileOffset: to });
          to += r.len;
          return { from: r.offset, to: to - r.len, len: r.len };
        });
        later = this.add(fd, { dst, ranges: placed });
      },
      close: () => {
        if (later) this.after.push(() => void pw.close());
        else pw.close();
      },
    };
  }

  /** Copies what the worker has not taken, waits for the pieces it has, and runs what waited for them. */
  join(): void {
    try {
      if (this.queued) this.drain();
    } finally {
      this.release();
    }
    const after = this.after;
    this.after = [];
    for (const fn of after) fn();
  }

  /** A failed dump: takes what the worker has not, waits for the piece it is on (it writes into a page file about to go). */
  cancel(): void {
    this.after = [];
    try {
      if (this.queued && shared) {
        const h = shared.header;
        // Nothing left to claim: the pieces not taken are marked done without a copy.
        for (;;) {
          const claimed = Atomics.load(h, CLAIMED);
          const posted = Atomics.load(h, POSTED);
          if (claimed >= posted) break;
          if (Atomics.compareExchange(h, CLAIMED, claimed, posted) === claimed) {
            Atomics.add(h, DONE, posted - claimed);
            break;
          }
        }
        this.waitDone(h);
      }
    } finally {
      this.release();
    }
  }

  private drain(): void {
    const { header: h, table: t } = shared!;
    for (;;) {
      const claimed = Atomics.load(h, CLAIMED);
      if (claimed >= Atomics.load(h, POSTED)) break;
      if (Atomics.compareExchange(h, CLAIMED, claimed, claimed + 1) !== claimed) continue;
      const at = claimed * FIELDS;
      try {
        copyRange({ src: t[at]!, dst: t[at + 1]!, from: t[at + 2]!, to: t[at + 3]!, len: t[at + 4]! });
      } finally {
        Atomics.add(h, DONE, 1);
      }
    }
    this.waitDone(h);
    // A copy of the worker's failed (FAILED names only the first): every piece again here,
    // where the error can be told, so no failed piece is left a hole.
    if (Atomics.exchange(h, FAILED, 0) > 0) {
      const posted = Atomics.load(h, POSTED);
      for (let i = 0; i < posted; i++) {
        const at = i * FIELDS;
        copyRange({ src: t[at]!, dst: t[at + 1]!, from: t[at + 2]!, to: t[at + 3]!, len: t[at + 4]! });
      }
    }
  }

  private waitDone(h: Int32Array): void {
    let last = Atomics.load(h, DONE);
    let since = performance.now();
    for (;;) {
      const done = Atomics.load(h, DONE);
      if (done >= Atomics.load(h, POSTED)) return;
      if (done !== last) {
        last = done;
        since = performance.now();
      } else if (performance.now() - since > STALL_MS) {
        throw new CkptError('INTERNAL', `Cannot save shared memory objects: their copy made no progress for ${STALL_MS / 1000} s`);
      }
      Atomics.wait(h, DONE, done, 100);
    }
  }

  private release(): void {
    for (const fd of this.fds) closeSync(fd);
    this.fds = [];
    this.queued = false;
  }
}
