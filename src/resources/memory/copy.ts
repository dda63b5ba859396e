/**
 * Copying the dumpable pages of a process into the page file: units of up to 2 MiB
 * (split.ts), each read with one process_vm_readv into a buffer that stays in cache,
 * then appended to the sink (the page writer writes big appends straight to the file,
 * and gathers small ones into 4 MiB writes). Exclusive pages are read with
 * process_vm_readv; pages that may be shared copy-on-write with another process with
 * pread on /proc/PID/mem (see dumpableRuns), which also reads PROT_NONE and exec-only
 * areas. A process with 10 000 one-page areas costs ~20 process_vm_readv calls.
 *
 * ckpt copies alone, through write(2). Measured on this VM, whose page tables the host
 * shadows (docs/performance.md, "Cold memory"): filling a shared mapping of the page file
 * paid an exit to the host per fresh page (4-10x slower than writing), and the target's
 * own pwritev alongside ckpt only queued behind ckpt's writes on the file's inode lock.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { addressOf, type Iovec } from '../../sys/index.js';
import { vmReadInto } from '../../sys/local.js';
import { checkInterrupted } from '../../infect/index.js';
import { unitBuffer, unitsOf, type Unit } from './split.js';

const PAGE = 4096;

export interface PageRun {
  vaddr: bigint;
  len: number;
  /** Read through /proc/PID/mem (not exclusive, or not readable). */
  viaMem: boolean;
  /** The target can read these pages itself (its area is readable). */
  readable: boolean;
}

export interface PageSink {
  append(vaddr: bigint, data: Uint8Array): void;
  /** Room for pages the caller fills in place (PageWriter has it; the copy no longer uses it). */
  reserve?(vaddr: bigint, len: number): { fd: number; fileOffset: number };
  readonly checksummed?: boolean;
  readonly path?: string;
}

export class MemFile {
  private fd = -1;
  constructor(private pid: number) {}
  get(): number {
    if (this.fd < 0) this.fd = openSync(`/proc/${this.pid}/mem`, 'r');
    return this.fd;
  }
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
  }
}

function short(pid: number, at: bigint): CkptError {
  return new CkptError('INTERNAL', `Cannot read memory of process ${pid} at 0x${at.toString(16)}: short read`);
}

interface CopyArgs {
  runs: PageRun[];
  sink: PageSink;
  /** Bytes just copied, for progress reports. */
  onBytes?: (n: number) => void;
}

/** Reads one unit into `data` (its segments packed in order): one process_vm_readv for the exclusive ones. */
export function readUnit(pid: number, args: { unit: Unit; data: Buffer; mem: MemFile }): void {
  const { unit, data } = args;
  const at = addressOf(data);
  const local: Iovec[] = [];
  const remote: Iovec[] = [];
  for (const s of unit.segs) {
    if (s.viaMem) continue;
    local.push({ base: at + BigInt(s.fileOffset - unit.fileStart), len: s.len });
    remote.push({ base: s.vaddr, len: s.len });
  }
  const want = remote.reduce((n, r) => n + r.len, 0);
  let got = 0;
  if (want > 0) {
    try {
      got = vmReadInto(pid, { local, remote });
    } catch {
      // a page process_vm_readv refuses: read the slow way below
    }
  }
  for (const s of unit.segs) {
    if (!s.viaMem && got === want) continue;
    if (readSync(args.mem.get(), data, s.fileOffset - unit.fileStart, s.len, s.vaddr) !== s.len) throw short(pid, s.vaddr);
  }
}

/** Copies every run into the sink, in order. */
export function copyPages(pid: number, args: CopyArgs): void {
  if (args.runs.length === 0) return;
  const mem = new MemFile(pid);
  try {
    let offset = 0;
    const segs = args.runs.map((r) => {
      const s = { vaddr: r.vaddr, len: r.len, fileOffset: offset, viaMem: r.viaMem };
      offset += r.len;
      return s;
    });
    const buf = unitBuffer();
    for (const unit of unitsOf(segs)) {
      checkInterrupted();
      const data = buf.subarray(0, unit.bytes);
      readUnit(pid, { unit, data, mem });
      for (const s of unit.segs) args.sink.append(s.vaddr, data.subarray(s.fileOffset - unit.fileStart, s.fileOffset - unit.fileStart + s.len));
      args.onBytes?.(unit.bytes);
    }
  } finally {
    mem.close();
  }
}

export { PAGE };
