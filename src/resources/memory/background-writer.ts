/**
 * The page-file writes of a background copy (background.ts), done by a worker thread
 * (node:worker_threads). Writing to fresh tmpfs pages is the slow part of a copy (a host
 * exit per page on these VMs), and a fault waits for the main thread: with the writes
 * here, the main thread only reads pages (process_vm_readv, ~10 GB/s), checks and
 * unprotects them, and answers faults between two such reads, never during a write.
 *
 * The pages go through SLOTS buffers of SLOT_BYTES in one SharedArrayBuffer: the main
 * thread reads into a free slot, queues its writes (fd, offset in the file, bytes of the
 * slot) in a shared ring, and takes the next slot; the worker writes them and frees the
 * slot (a count of writes outstanding per slot, with Atomics). The worker needs nothing
 * but node:fs, so its code is here as text (works the same from the bundle).
 */
import { receiveMessageOnPort, MessageChannel, Worker } from 'node:worker_threads';
import { CkptError } from '../../common/errors.js';

/** Bytes of one slot: a copy reads at most this much at once. */
export const SLOT_BYTES = 2 * 1024 * 1024;
const SLOTS = 4;
/** Writes queued at most (a slot holds up to MAX_IOV pieces, each its own write). */
const QUEUE = 4096;
/** Int32 indexes in the control array. */
const HEAD = 0;
const TAIL = 1;
const ERROR = 2;
const STOP = 3;
/** Set by the worker once it runs. */
const STARTED = 4;
const REF = 5;
/** Float64 fields of one queued write: slot, fd, offset in the file, offset in the shared buffer, length. */
const JOB = 5;

const WORKER = `
const { workerData } = require('node:worker_threads');
const { writeSync } = require('node:fs');
function main() {
  const { ctrl: c, jobs: j, data, port, queue, job } = workerData;
  const ctrl = new Int32Array(c);
  const jobs = new Float64Array(j);
  const buf = Buffer.from(data);
  let tail = 0;
  Atomics.store(ctrl, ${STARTED}, 1);
  for (;;) {
    while (Atomics.load(ctrl, ${HEAD}) === tail) {
      if (Atomics.load(ctrl, ${STOP}) !== 0) return;
      Atomics.wait(ctrl, ${HEAD}, tail, 100);
    }
    const at = (tail % queue) * job;
    const slot = jobs[at], fd = jobs[at + 1], pos = jobs[at + 2], src = jobs[at + 3], len = jobs[at + 4];
    if (Atomics.load(ctrl, ${ERROR}) === 0) {
      try {
        for (let done = 0; done < len;) done += writeSync(fd, buf, src + done, len - done, pos + done);
      } catch (e) {
        port.postMessage(String(e && e.message));
        Atomics.store(ctrl, ${ERROR}, 1);
      }
    }
    tail++;
    Atomics.store(ctrl, ${TAIL}, tail);
    Atomics.notify(ctrl, ${TAIL});
    Atomics.sub(ctrl, ${REF} + slot, 1);
    Atomics.notify(ctrl, ${REF} + slot);
  }
}
main();
`;

/** The shared buffers, made once per ckpt process: fresh pages cost a host exit each on these VMs. */
let shared: SharedArrayBuffer | undefined;

export interface Slot {
  index: number;
  buf: Buffer;
}

export class PageFileWriter {
  private readonly ctrl = new Int32Array(new SharedArrayBuffer((REF + SLOTS) * 4));
  private readonly jobs = new Float64Array(new SharedArrayBuffer(QUEUE * JOB * 8));
  private readonly data: SharedArrayBuffer;
  private readonly slots: Slot[] = [];
  private readonly worker: Worker;
  private readonly port: MessageChannel['port1'];
  private head = 0;
  private stopped = false;

  constructor() {
    this.data = shared ??= new SharedArrayBuffer(SLOTS * SLOT_BYTES);
    for (let i = 0; i < SLOTS; i++) this.slots.push({ index: i, buf: Buffer.from(this.data, i * SLOT_BYTES, SLOT_BYTES) });
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(WORKER, {
      eval: true,
      // Plain node: no loader of ours (tsx in tests) to start in it.
      execArgv: [],
      workerData: { ctrl: this.ctrl.buffer, jobs: this.jobs.buffer, data: this.data, port: port2, queue: QUEUE, job: JOB },
      transferList: [port2],
    });
    // It must not keep ckpt alive, nor its failure go unseen: errors are read with check().
    this.worker.unref();
    this.worker.on('error', () => Atomics.store(this.ctrl, ERROR, 1));
  }

  /** Whether a slot is free now. */
  get hasFree(): boolean {
    return this.slots.some((s) => Atomics.load(this.ctrl, REF + s.index) === 0);
  }

  /** A free slot, held until release(): waits for the worker to free one if need be. */
  acquire(): Slot {
    for (;;) {
      this.check();
      for (const s of this.slots) {
        if (Atomics.compareExchange(this.ctrl, REF + s.index, 0, 1) === 0) return s;
      }
      Atomics.wait(this.ctrl, TAIL, Atomics.load(this.ctrl, TAIL), 1);
    }
  }

  /** Queues a write of `len` bytes of the slot, from `from`, at `at` in file `fd`. */
  write(slot: Slot, args: { fd: number; at: number; from: number; len: number }): void {
    while (this.head - Atomics.load(this.ctrl, TAIL) >= QUEUE) {
      this.check();
      Atomics.wait(this.ctrl, TAIL, Atomics.load(this.ctrl, TAIL), 10);
    }
    const j = (this.head % QUEUE) * JOB;
    this.jobs[j] = slot.index;
    this.jobs[j + 1] = args.fd;
    this.jobs[j + 2] = args.at;
    this.jobs[j + 3] = slot.index * SLOT_BYTES + args.from;
    this.jobs[j + 4] = args.len;
    Atomics.add(this.ctrl, REF + slot.index, 1);
    this.head++;
    Atomics.store(this.ctrl, HEAD, this.head);
    Atomics.notify(this.ctrl, HEAD);
  }

  /** The slot may be used again once its writes are done. */
  release(slot: Slot): void {
    Atomics.sub(this.ctrl, REF + slot.index, 1);
  }

  /** Waits until every queued write is done; throws if one failed. */
  drain(): void {
    for (let tail = Atomics.load(this.ctrl, TAIL); tail !== this.head; tail = Atomics.load(this.ctrl, TAIL)) {
      this.check();
      Atomics.wait(this.ctrl, TAIL, tail, 10);
    }
    this.check();
  }

  /** Throws the worker's failure, if any (a write that failed: disk full, I/O error). */
  check(): void {
    if (Atomics.load(this.ctrl, ERROR) === 0) return;
    const msg = receiveMessageOnPort(this.port)?.message as string | undefined;
    throw new CkptError('IO', `Cannot write the page file of a background dump: ${msg ?? 'its writer thread failed'}`);
  }

  /**
   * Ends the worker: queued writes not done yet are dropped (the dump failed, or drain()
   * came first), and the one under way is waited for, so that the caller may close the
   * page files (a write to a closed fd's number could land in whatever reuses it).
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    Atomics.store(this.ctrl, ERROR, Atomics.load(this.ctrl, ERROR) || 2);
    Atomics.notify(this.ctrl, HEAD);
    // A worker not started yet writes nothing: it will see ERROR first.
    const until = performance.now() + 10_000;
    for (let tail = Atomics.load(this.ctrl, TAIL); tail !== this.head && Atomics.load(this.ctrl, STARTED) !== 0 && performance.now() < until; tail = Atomics.load(this.ctrl, TAIL)) {
      Atomics.wait(this.ctrl, TAIL, tail, 10);
    }
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.notify(this.ctrl, HEAD);
    this.port.close();
  }
}
