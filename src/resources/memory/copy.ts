/**
 * Copying the dumpable pages of a process into the page file. Where the page writer
 * lets us (no checksums), the page file is extended, mapped shared into ckpt, and the
 * pages are read straight into it: one copy from the target into the page cache
 * instead of two (into a buffer, then write()). Exclusive pages are read with
 * process_vm_readv; pages that may be shared copy-on-write with another process with
 * pread on /proc/PID/mem (see dumpableRuns), which also reads PROT_NONE and
 * exec-only areas.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { isErrno, vmRead, type Iovec } from '../../sys/index.js';
import { fallocate, mmapFile, munmapLocal, preadAt, vmReadInto } from '../../sys/local.js';

const PAGE = 4096;
const CHUNK = 4 * 1024 * 1024;
const MAX_IOV = 1024;

export interface PageRun {
  vaddr: bigint;
  len: number;
  /** Read through /proc/PID/mem (not exclusive, or not readable). */
  viaMem: boolean;
}

export interface PageSink {
  append(vaddr: bigint, data: Uint8Array): void;
  /** Room for pages the caller fills in place; absent when the sink must see the bytes. */
  reserve?(vaddr: bigint, len: number): { fd: number; fileOffset: number };
  readonly checksummed?: boolean;
  readonly path?: string;
}

class MemFile {
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

/** In place: reserve every run, map the reserved region, read into it. */
interface CopyArgs {
  runs: PageRun[];
  sink: PageSink;
  /** Bytes just copied, for progress reports. */
  onBytes?: (n: number) => void;
}

function copyInPlace(pid: number, args: CopyArgs & { mem: MemFile }): void {
  const { runs, sink, mem } = args;
  const slots = runs.map((r) => sink.reserve!(r.vaddr, r.len));
  const fd = slots[0]!.fd;
  const base = slots[0]!.fileOffset;
  const total = slots.at(-1)!.fileOffset + runs.at(-1)!.len - base;
  try {
    fallocate(fd, { offset: base, len: total });
  } catch (e) {
    if (isErrno(e, 'ENOSPC')) throw new CkptError('IO', `Cannot write ${sink.path ?? 'the page file'}: no space left on device (ENOSPC)`, { cause: e });
    if (!isErrno(e, 'EOPNOTSUPP')) throw e;
  }
  const map = mmapFile({ len: total, fd, offset: base });
  try {
    let local: Iovec[] = [];
    let remote: Iovec[] = [];
    let bytes = 0;
    const flush = () => {
      if (remote.length === 0) return;
      let got = 0;
      try {
        got = vmReadInto(pid, { local, remote });
      } catch {
        // a page process_vm_readv refuses: read the slow way below
      }
      if (got !== bytes) {
        for (let i = 0; i < remote.length; i++) {
          if (preadAt(mem.get(), { addr: local[i]!.base, len: remote[i]!.len, pos: remote[i]!.base }) !== remote[i]!.len) throw short(pid, remote[i]!.base);
        }
      }
      args.onBytes?.(bytes);
      local = [];
      remote = [];
      bytes = 0;
    };
    runs.forEach((r, i) => {
      const addr = map + BigInt(slots[i]!.fileOffset - base);
      if (r.viaMem) {
        if (preadAt(mem.get(), { addr, len: r.len, pos: r.vaddr }) !== r.len) throw short(pid, r.vaddr);
        args.onBytes?.(r.len);
        return;
      }
      local.push({ base: addr, len: r.len });
      remote.push({ base: r.vaddr, len: r.len });
      bytes += r.len;
      if (remote.length === MAX_IOV || bytes >= CHUNK * 16) flush();
    });
    flush();
  } finally {
    munmapLocal(map, total);
  }
}

/** Through a buffer, for sinks that must see the bytes (checksums). */
function copyBuffered(pid: number, args: CopyArgs & { mem: MemFile }): void {
  const buf = Buffer.allocUnsafeSlow(CHUNK);
  for (const r of args.runs) {
    for (let off = 0; off < r.len; off += CHUNK) {
      const len = Math.min(CHUNK, r.len - off);
      const at = r.vaddr + BigInt(off);
      const data = buf.subarray(0, len);
      let got = 0;
      if (!r.viaMem) {
        try {
          got = vmRead(pid, data, [{ base: at, len }]);
        } catch {
          got = 0;
        }
      }
      if (got !== len && readSync(args.mem.get(), data, 0, len, at) !== len) throw short(pid, at);
      args.sink.append(at, data);
      args.onBytes?.(len);
    }
  }
}

export function copyPages(pid: number, args: CopyArgs): void {
  if (args.runs.length === 0) return;
  const mem = new MemFile(pid);
  try {
    if (args.sink.reserve && !args.sink.checksummed) copyInPlace(pid, { ...args, mem });
    else copyBuffered(pid, { ...args, mem });
  } finally {
    mem.close();
  }
}

export { PAGE };
