// Writes one page file. This is the hot path of a dump: page data arrives from
// process_vm_readv in big buffers and goes to the file with few, large writeSync
// calls; small appends are gathered in a staging buffer so that a caller that
// appends page by page still makes 4 MiB writes.
import * as fs from 'node:fs';
import { CkptError } from '../common/errors.js';
import { crc32 } from './crc32.js';
import { closeQuietly, createFile, tryIo, writeAll } from './io.js';
import { DEFAULT_CHUNK_SIZE, encodePagesHeader, PAGE_SIZE, type PageRun, type Pagemap, type ParentRun } from './pagemap.js';
import type { RemoteFile } from './remote/sender.js';

/** Size of the staging buffer and of the writes it makes (1-4 MiB is best here). */
export const STAGE_SIZE = 4 * 1024 * 1024;

export interface PageWriterOptions {
  /** Compute per-chunk CRC-32s (default true). Costs ~0.2 s per GiB on this machine. */
  checksum?: boolean;
  /** Checksum chunk size in bytes: a power of two ≥ 4096 (default 1 MiB). */
  chunkSize?: number;
}

/**
 * One stage buffer per ckpt process, lent to one writer at a time: a fresh 4 MiB per
 * writer cost its page faults each time (a tree dump has a writer per process and per
 * shared memory object; issue 13). A writer that finds it lent out (another writer has
 * pages staged) stages in a buffer of its own.
 */
let sharedStage: Buffer | undefined;
/** How many bytes the writer the shared buffer is lent to has staged in it (its stagedBytes). */
let stageHolder: (() => number) | undefined;

/** Called once when the page file is complete, to write its pagemap image. */
export type PagesDone = (args: { size: number; pagemap: Pagemap }) => void;

export class PageWriter {
  readonly path: string;
  private fd: number | undefined;
  private readonly runs: PageRun[] = [];
  /** Runs recorded with placed(), in any order: sorted in with the others at close. */
  private readonly loose: PageRun[] = [];
  private inParent: ParentRun[] | undefined;
  private dataBytes = 0; // bytes of page data written or staged so far
  private written = 0; // bytes of page data in the file (positional writes: reserve() leaves holes to be filled)
  private stage: Buffer | undefined;
  private staged = 0;
  private readonly stagedBytes = (): number => this.staged;
  private readonly chunkSize: number;
  private readonly crcs: number[] | undefined;
  private chunkCrc = 0;
  private chunkFill = 0;
  private state: 'open' | 'closed' | 'failed' = 'open';
  private readonly done: PagesDone;
  /** Where the file goes instead of a local file (a page server): appends only. */
  private readonly remote: RemoteFile | undefined;

  /**
   * `args.at`: where to create the file, if not `path` (e.g. /proc/self/fd/N/name);
   * `args.remote`: send the file there instead of writing it (no local file is made).
   */
  constructor(path: string, args: { options: PageWriterOptions; done: PagesDone; at?: string; remote?: RemoteFile }) {
    this.path = path;
    this.done = args.done;
    this.chunkSize = args.options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (this.chunkSize < PAGE_SIZE || (this.chunkSize & (this.chunkSize - 1)) !== 0) {
      throw new CkptError('USAGE', `Cannot write ${path}: chunk size ${this.chunkSize} is not a power of two ≥ ${PAGE_SIZE}`);
    }
    this.crcs = args.options.checksum === false ? undefined : [];
    this.remote = args.remote;
    if (this.remote) this.remote.write(encodePagesHeader());
    else {
      this.fd = createFile(args.at ?? path, path);
      this.guard(() => writeAll(this.fd!, encodePagesHeader()));
    }
  }

  /** Appends the pages at `vaddr` (ascending, non-overlapping; whole pages). */
  append(vaddr: bigint, data: Uint8Array): void {
    this.checkOpen();
    if (data.length % PAGE_SIZE !== 0 || vaddr % BigInt(PAGE_SIZE) !== 0n || vaddr < 0n) {
      throw new CkptError('USAGE', `Cannot append to ${this.path}: vaddr and length must be page-aligned`);
    }
    if (data.length === 0) return;
    const last = this.runs[this.runs.length - 1];
    const lastEnd = last ? last.vaddr + BigInt(last.nrPages * PAGE_SIZE) : 0n;
    if (vaddr < lastEnd) {
      throw new CkptError('USAGE', `Cannot append to ${this.path}: 0x${vaddr.toString(16)} is below the end of the previous run`);
    }
    if (vaddr + BigInt(data.length) > 1n << 64n) throw new CkptError('USAGE', `Cannot append to ${this.path}: past 2^64`);
    const nrPages = data.length / PAGE_SIZE;
    // Contiguous in memory and (always) in the file: extend the previous run.
    if (last && vaddr === lastEnd) last.nrPages += nrPages;
    else this.runs.push({ vaddr, nrPages, fileOffset: BigInt(PAGE_SIZE + this.dataBytes) });
    if (this.crcs) this.checksum(data);
    this.dataBytes += data.length;
    this.guard(() => this.put(data));
  }

  /** Flushes, fsyncs and closes the file, then writes the pagemap image. */
  close(): { nrRuns: number; nrPages: number } {
    this.checkOpen();
    this.guard(() => {
      this.flush();
      if (this.remote) this.remote.close();
      else fs.fsyncSync(this.fd!);
    });
    closeQuietly(this.fd);
    this.fd = undefined;
    this.state = 'closed';
    if (this.crcs && this.chunkFill > 0) this.crcs.push(this.chunkCrc);
    const checksum = this.crcs ? { algorithm: 'crc32' as const, chunkSize: this.chunkSize, crcs: this.crcs } : null;
    const pagemap: Pagemap = { pageSize: PAGE_SIZE, runs: this.loose.length > 0 ? mergeRuns(this.path, [...this.runs, ...this.loose]) : this.runs, checksum };
    if (this.inParent) pagemap.inParent = this.inParent;
    this.done({ size: PAGE_SIZE + this.dataBytes, pagemap });
    return { nrRuns: this.runs.length, nrPages: this.dataBytes / PAGE_SIZE };
  }

  /**
   * Records that the `nrPages` pages at `vaddr` are unchanged since the parent dump: the
   * restore takes them from the parent's page file of the same id (ascending, like appends).
   */
  fromParent(vaddr: bigint, nrPages: number): void {
    this.checkOpen();
    if (vaddr % BigInt(PAGE_SIZE) !== 0n || !Number.isSafeInteger(nrPages) || nrPages <= 0) {
      throw new CkptError('USAGE', `Cannot record parent pages in ${this.path}: not whole pages`);
    }
    this.inParent ??= [];
    const last = this.inParent.at(-1);
    const lastEnd = last ? last.vaddr + BigInt(last.nrPages * PAGE_SIZE) : 0n;
    if (vaddr < lastEnd) throw new CkptError('USAGE', `Cannot record parent pages in ${this.path}: 0x${vaddr.toString(16)} is below the previous parent run`);
    if (last && vaddr === lastEnd) last.nrPages += nrPages;
    else this.inParent.push({ vaddr, nrPages });
  }

  /** Pages recorded with fromParent(). */
  get parentPages(): number {
    return (this.inParent ?? []).reduce((n, r) => n + r.nrPages, 0);
  }

  get checksummed(): boolean {
    return this.crcs !== undefined;
  }

  get isOpen(): boolean {
    return this.state === 'open';
  }

  /** Closes the fd without writing anything more (ImageWriter.abort removes the file). */
  discard(): void {
    this.releaseStage();
    closeQuietly(this.fd);
    this.fd = undefined;
    if (this.state === 'open') this.state = 'failed';
  }

  /**
   * Reserves room for `len` bytes of pages at `vaddr` and returns where they go in the
   * file; the caller fills that range itself (e.g. process_vm_readv straight into a
   * shared mapping of the file: one copy instead of two). Only without checksums:
   * the writer never sees the bytes.
   */
  reserve(vaddr: bigint, len: number): { fd: number; fileOffset: number } {
    this.checkOpen();
    if (this.crcs) throw new CkptError('USAGE', `Cannot reserve pages in ${this.path}: it is checksummed`);
    if (this.remote) throw new CkptError('USAGE', `Cannot reserve pages in ${this.path}: it goes to a page server`);
    if (len % PAGE_SIZE !== 0 || vaddr % BigInt(PAGE_SIZE) !== 0n) throw new CkptError('USAGE', `Cannot reserve pages in ${this.path}: not page-aligned`);
    this.guard(() => this.flush());
    const last = this.runs[this.runs.length - 1];
    const lastEnd = last ? last.vaddr + BigInt(last.nrPages * PAGE_SIZE) : 0n;
    if (vaddr < lastEnd) throw new CkptError('USAGE', `Cannot reserve pages in ${this.path}: 0x${vaddr.toString(16)} is below the previous run`);
    const fileOffset = PAGE_SIZE + this.dataBytes;
    if (last && vaddr === lastEnd) last.nrPages += len / PAGE_SIZE;
    else this.runs.push({ vaddr, nrPages: len / PAGE_SIZE, fileOffset: BigInt(fileOffset) });
    this.dataBytes += len;
    this.guard(() => fs.ftruncateSync(this.fd!, PAGE_SIZE + this.dataBytes));
    this.written = this.dataBytes;
    return { fd: this.fd!, fileOffset };
  }

  /**
   * Room for `len` bytes of pages at the end of the file, for pages whose addresses are
   * known only once they are read (a background dump chooses them as it copies): the
   * caller writes them there and records them with placed(). Only without checksums.
   */
  allocate(len: number): { fd: number; fileOffset: number } {
    this.checkOpen();
    if (this.crcs || this.remote) throw new CkptError('USAGE', `Cannot allocate pages in ${this.path}: it is checksummed or goes to a page server`);
    if (len % PAGE_SIZE !== 0) throw new CkptError('USAGE', `Cannot allocate pages in ${this.path}: not whole pages`);
    this.guard(() => this.flush());
    const fileOffset = PAGE_SIZE + this.dataBytes;
    this.dataBytes += len;
    this.guard(() => fs.ftruncateSync(this.fd!, PAGE_SIZE + this.dataBytes));
    this.written = this.dataBytes;
    return { fd: this.fd!, fileOffset };
  }

  /** Records the `len` bytes written at `fileOffset` (from allocate) as the pages at `vaddr`; in any order. */
  placed(vaddr: bigint, args: { len: number; fileOffset: number }): void {
    this.checkOpen();
    if (vaddr % BigInt(PAGE_SIZE) !== 0n || args.len % PAGE_SIZE !== 0 || args.len <= 0) throw new CkptError('USAGE', `Cannot record pages in ${this.path}: not whole pages`);
    this.loose.push({ vaddr, nrPages: args.len / PAGE_SIZE, fileOffset: BigInt(args.fileOffset) });
  }

  private put(data: Uint8Array): void {
    if (data.length >= STAGE_SIZE / 2) {
      // Big buffers go straight to the file: copying them would only cost time.
      this.flush();
      this.output(data);
      return;
    }
    if (this.staged + data.length > STAGE_SIZE) this.flush();
    this.takeStage().set(data, this.staged);
    this.staged += data.length;
  }

  private flush(): void {
    if (this.staged === 0) return;
    this.output(this.stage!.subarray(0, this.staged));
    this.staged = 0;
    this.releaseStage();
  }

  private takeStage(): Buffer {
    if (this.stage) return this.stage;
    // The holder may have died without giving it back (its dump failed): free once nothing is staged in it.
    if (stageHolder === undefined || stageHolder() === 0) {
      sharedStage ??= Buffer.allocUnsafeSlow(STAGE_SIZE);
      stageHolder = this.stagedBytes;
      this.stage = sharedStage;
    } else {
      this.stage = Buffer.allocUnsafe(STAGE_SIZE);
    }
    return this.stage;
  }

  private releaseStage(): void {
    if (stageHolder === this.stagedBytes) stageHolder = undefined;
    this.stage = undefined;
    this.staged = 0;
  }

  /** Writes page data at the end of what is written: to the file, or to the page server. */
  private output(data: Uint8Array): void {
    if (this.remote) this.remote.write(data);
    else writeAll(this.fd!, data, PAGE_SIZE + this.written);
    this.written += data.length;
  }

  private checksum(data: Uint8Array): void {
    let off = 0;
    while (off < data.length) {
      const take = Math.min(this.chunkSize - this.chunkFill, data.length - off);
      this.chunkCrc = crc32(data.subarray(off, off + take), this.chunkCrc);
      this.chunkFill += take;
      off += take;
      if (this.chunkFill === this.chunkSize) {
        this.crcs!.push(this.chunkCrc);
        this.chunkCrc = 0;
        this.chunkFill = 0;
      }
    }
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new CkptError('USAGE', `Cannot write ${this.path}: the page writer is ${this.state}`);
  }

  /** Runs a write; on failure the writer is dead (its file is half-written) and the error says why. */
  private guard(fn: () => void): void {
    try {
      tryIo(`write ${this.path}`, fn);
    } catch (e) {
      this.discard();
      throw e;
    }
  }
}

/** Runs sorted by address, neighbours in memory and in the file merged; an overlap is a bug of the caller. */
function mergeRuns(path: string, runs: PageRun[]): PageRun[] {
  runs.sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
  const out: PageRun[] = [];
  for (const r of runs) {
    const last = out.at(-1);
    const lastEnd = last ? last.vaddr + BigInt(last.nrPages * PAGE_SIZE) : 0n;
    if (last && r.vaddr < lastEnd) throw new CkptError('INTERNAL', `Cannot write ${path}: pages at 0x${r.vaddr.toString(16)} recorded twice`);
    if (last && r.vaddr === lastEnd && r.fileOffset === last.fileOffset + BigInt(last.nrPages * PAGE_SIZE)) last.nrPages += r.nrPages;
    else out.push({ ...r });
  }
  return out;
}
