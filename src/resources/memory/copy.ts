/**
 * Copying the dumpable pages of a process into the page file. Where the page writer
 * lets us (no checksums), the page file is extended, mapped shared into ckpt, and the
 * pages are read straight into it: one copy from the target into the page cache
 * instead of two (into a buffer, then write()). Exclusive pages are read with
 * process_vm_readv; pages that may be shared copy-on-write with another process with
 * pread on /proc/PID/mem (see dumpableRuns), which also reads PROT_NONE and
 * exec-only areas. From SHARE_MIN bytes on, the target's own thread writes part of
 * its pages into the file meanwhile (split.ts).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { isErrno, NR, vmRead, type Iovec } from '../../sys/index.js';
import { fallocate, mmapFile, munmapLocal, preadAt, vmReadInto } from '../../sys/local.js';
import { readLimits } from '../../proc/index.js';
import { checkInterrupted, type RemoteTask } from '../../infect/index.js';
import { lendLocalFd, returnLoan } from '../transfer.js';
import { iovecsOf, MAX_IOV, shareCopy, unitsOf, type Unit } from './split.js';

const PAGE = 4096;
const CHUNK = 4 * 1024 * 1024;

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

interface CopyArgs {
  runs: PageRun[];
  sink: PageSink;
  /** Bytes just copied, for progress reports. */
  onBytes?: (n: number) => void;
  /** The seized target: with it, big copies are shared with the target's own thread (split.ts). */
  remote?: RemoteTask;
}

/** Below this many bytes the fd handover to the target costs more than sharing saves. */
const SHARE_MIN = 32 * 1024 * 1024;

/** In place: reserve every run, map the reserved region, read into it. */
function copyInPlace(pid: number, args: CopyArgs & { mem: MemFile }): number {
  const { runs, sink, mem } = args;
  const slots = runs.map((r) => sink.reserve!(r.vaddr, r.len));
  const fd = slots[0]!.fd;
  const base = slots[0]!.fileOffset;
  const total = slots.at(-1)!.fileOffset + runs.at(-1)!.len - base;
  try {
    // Allocated by ckpt, so the page cache is charged to ckpt and not to the target's
    // memory cgroup even where the target writes its own pages in.
    fallocate(fd, { offset: base, len: total });
  } catch (e) {
    if (isErrno(e, 'ENOSPC')) throw new CkptError('IO', `Cannot write ${sink.path ?? 'the page file'}: no space left on device (ENOSPC)`, { cause: e });
    if (!isErrno(e, 'EOPNOTSUPP')) throw e;
  }
  const map = mmapFile({ len: total, fd, offset: base });
  try {
    const units = unitsOf(runs.map((r, i) => ({ vaddr: r.vaddr, len: r.len, fileOffset: slots[i]!.fileOffset, viaMem: r.viaMem, remoteOk: r.readable })));
    const local = (u: Unit) => copyUnit(pid, { unit: u, at: (off) => map + BigInt(off - base), mem });
    const shared = args.remote && total >= SHARE_MIN ? handOver(pid, { remote: args.remote, fd, end: base + total }) : undefined;
    if (shared === undefined) {
      for (const u of units) {
        checkInterrupted();
        local(u);
        args.onBytes?.(u.bytes);
      }
      return 0;
    }
    const remote = args.remote!;
    try {
      const iovAddr = remote.scratch(MAX_IOV * 16);
      return shareCopy({
        units,
        remote,
        local,
        onBytes: args.onBytes,
        begin: (group) => {
          const { iov, count } = iovecsOf(group);
          remote.write(iovAddr, iov);
          remote.begin(NR.pwritev, [shared, iovAddr, count, group[0]!.fileStart], 'pwritev(pages)');
        },
      }).byTarget;
    } finally {
      returnLoan(remote, shared);
    }
  } finally {
    munmapLocal(map, total);
  }
}

/** ckpt's share of the copy: one unit into the mapped page file. */
function copyUnit(pid: number, args: { unit: Unit; at: (fileOffset: number) => bigint; mem: MemFile }): void {
  const local: Iovec[] = [];
  const remote: Iovec[] = [];
  let bytes = 0;
  for (const s of args.unit.segs) {
    const addr = args.at(s.fileOffset);
    if (s.viaMem) {
      if (preadAt(args.mem.get(), { addr, len: s.len, pos: s.vaddr }) !== s.len) throw short(pid, s.vaddr);
      continue;
    }
    local.push({ base: addr, len: s.len });
    remote.push({ base: s.vaddr, len: s.len });
    bytes += s.len;
  }
  if (remote.length === 0) return;
  let got = 0;
  try {
    got = vmReadInto(pid, { local, remote });
  } catch {
    // a page process_vm_readv refuses: read the slow way below
  }
  if (got === bytes) return;
  for (let i = 0; i < remote.length; i++) {
    if (preadAt(args.mem.get(), { addr: local[i]!.base, len: remote[i]!.len, pos: remote[i]!.base }) !== remote[i]!.len) throw short(pid, remote[i]!.base);
  }
}

/**
 * Gives the target the page file (fd number in the target), or undefined when it
 * should not write to it: a file size limit it could hit (SIGXFSZ would be queued
 * for it), or any failure of the handover (no free fd, …), after which ckpt copies alone.
 */
function handOver(pid: number, args: { remote: RemoteTask; fd: number; end: number }): number | undefined {
  try {
    const fsize = readLimits(pid).find((l) => l.name === 'Max file size');
    if (!fsize || fsize.soft < BigInt(args.end)) return undefined;
    return lendLocalFd(args.remote, { pid, localFd: args.fd });
  } catch {
    return undefined;
  }
}

/** Through a buffer, for sinks that must see the bytes (checksums). */
function copyBuffered(pid: number, args: CopyArgs & { mem: MemFile }): void {
  const buf = Buffer.allocUnsafeSlow(CHUNK);
  for (const r of args.runs) {
    for (let off = 0; off < r.len; off += CHUNK) {
      checkInterrupted();
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

/** Copies every run into the sink; returns how many bytes the target copied itself. */
export function copyPages(pid: number, args: CopyArgs): number {
  if (args.runs.length === 0) return 0;
  const mem = new MemFile(pid);
  try {
    if (args.sink.reserve && !args.sink.checksummed) return copyInPlace(pid, { ...args, mem });
    copyBuffered(pid, { ...args, mem });
    return 0;
  } finally {
    mem.close();
  }
}

export { PAGE };
