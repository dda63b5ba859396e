/**
 * Dumping memory: the layout from smaps, the mm fields from stat and auxv, and the
 * contents of every page that holds state, read with process_vm_readv in large
 * chunks (falling back to /proc/PID/mem, which can read PROT_NONE and exec-only
 * areas) and appended to the page file.
 */
import { closeSync, openSync, readlinkSync, readSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { NR, vmRead, type Iovec } from '../../sys/index.js';
import { openPagemap, readAuxv, readPagemapRange, readSmaps, readStat, type SmapsEntry } from '../../proc/index.js';
import type { DumpContext } from '../types.js';
import { identify } from './files.js';
import { dumpableSpans } from './pages.js';
import { CowFilter, type ParentMemory } from './cow.js';
import { ShmemTable, shmemKindOf } from './shmem.js';
import { hasOwnPages, isShmemArea, type MappedFile, type MemoryState, type Vma } from './state.js';

const PAGE = 4096;
const CHUNK = 4 * 1024 * 1024;

export interface PageSink {
  append(vaddr: bigint, data: Uint8Array): void;
}

export interface MemoryDumpStats {
  pages: number;
  bytes: number;
  /** Pages left out because the parent's copy is the same page (copy-on-write after fork). */
  sharedWithParent?: number;
}

export interface MemoryDumpOptions {
  /**
   * The parent of this process, dumped before it and still stopped. Only pass it when
   * the restore will fork this process from its restored parent (see cow.ts).
   */
  parent?: ParentMemory;
}

function kindOf(e: SmapsEntry): Vma['kind'] {
  switch (e.path) {
    case '[heap]': return 'heap';
    case '[stack]': return 'stack';
    case '[vdso]': return 'vdso';
    case '[vvar]': return 'vvar';
    case '[vvar_vclock]': return 'vvar_vclock';
    case '[vsyscall]': return 'vsyscall';
  }
  if (e.path.startsWith('/') && e.inode !== 0) return 'file';
  return 'anon';
}

function protOf(e: SmapsEntry): number {
  return (e.prot.read ? 1 : 0) | (e.prot.write ? 2 : 0) | (e.prot.exec ? 4 : 0);
}

class FileTable {
  readonly files: MappedFile[] = [];
  private index = new Map<string, number>();
  constructor(private pid: number) {}

  add(path: string, deleted: boolean, range?: { start: bigint; end: bigint }): number {
    const known = this.index.get(path);
    if (known !== undefined) return known;
    if (deleted) throw new CkptError('UNSUPPORTED', `Cannot dump process ${this.pid}: it maps ${path}, which was deleted (not supported yet)`);
    const via = range ? `/proc/${this.pid}/map_files/${range.start.toString(16)}-${range.end.toString(16)}` : path;
    let id: MappedFile;
    try {
      id = identify(path, via);
    } catch (e) {
      throw new CkptError('UNSUPPORTED', `Cannot dump process ${this.pid}: cannot read mapped file ${path}: ${(e as Error).message}`);
    }
    this.files.push(id);
    this.index.set(path, this.files.length - 1);
    return this.files.length - 1;
  }
}

function toVma(e: SmapsEntry, tables: { files: FileTable; shmem: ShmemTable }): Vma {
  const { files } = tables;
  const shm = shmemKindOf(e);
  // A private mapping of /dev/zero is plain anonymous memory.
  const kind = shm ? shm.kind : e.path === '/dev/zero' && !e.shared ? 'anon' : kindOf(e);
  const vma: Vma = {
    start: e.start, end: e.end, prot: protOf(e), shared: e.shared, kind, offset: e.offset, flags: e.vmFlags,
  };
  if (shm) {
    vma.shm = tables.shmem.addArea(e, shm);
    if (shm.kind === 'shmem' && shm.name !== undefined) vma.name = shm.name;
  } else if (kind === 'file') vma.file = files.add(e.path, e.deleted, e);
  else if (kind === 'anon' && e.path.startsWith('[anon:')) vma.name = e.path.slice(6, -1);
  else if (kind === 'anon' && e.path !== '' && e.path !== '/dev/zero') {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${files['pid']}: mapping of ${e.path} at 0x${e.start.toString(16)} is not supported yet`);
  }
  return vma;
}

/** Reads [addr, addr+len) of the target, through /proc/PID/mem when process_vm_readv cannot. */
class Reader {
  private memFd = -1;
  constructor(private pid: number) {}

  read(buf: Buffer, iovs: Iovec[], viaMem: boolean): void {
    if (!viaMem) {
      try {
        if (vmRead(this.pid, buf, iovs) === buf.length) return;
      } catch {
        // EFAULT on a page process_vm_readv refuses: read the slow way
      }
    }
    if (this.memFd < 0) this.memFd = openSync(`/proc/${this.pid}/mem`, 'r');
    let off = 0;
    for (const v of iovs) {
      const n = readSync(this.memFd, buf, off, v.len, v.base);
      if (n !== v.len) throw new CkptError('INTERNAL', `Cannot read memory of process ${this.pid} at 0x${v.base.toString(16)}: short read`);
      off += v.len;
    }
  }

  close(): void {
    if (this.memFd >= 0) closeSync(this.memFd);
  }
}

function dumpPages(ctx: DumpContext, vmas: Vma[], args: { sink: PageSink; cow?: CowFilter }): MemoryDumpStats {
  const { sink, cow } = args;
  const pagemapFd = openPagemap(ctx.pid);
  const reader = new Reader(ctx.pid);
  const buf = Buffer.allocUnsafeSlow(CHUNK);
  const stats = { pages: 0, bytes: 0 };
  try {
    for (const v of vmas) {
      // Shared areas keep their contents in their file or shared memory object.
      if (!hasOwnPages(v)) continue;
      const backed = v.kind === 'file' || isShmemArea(v);
      const pagemap = readPagemapRange(pagemapFd, v.start, v.end);
      cow?.filter(v, pagemap);
      const spans = dumpableSpans(pagemap, { anonOnly: backed });
      const viaMem = (v.prot & 1) === 0;
      // Gather spans into chunks of up to CHUNK bytes, one process_vm_readv each.
      let iovs: Iovec[] = [];
      let fill = 0;
      const flush = () => {
        if (fill === 0) return;
        const data = buf.subarray(0, fill);
        reader.read(data, iovs, viaMem);
        let off = 0;
        for (const iov of iovs) {
          sink.append(iov.base, data.subarray(off, off + iov.len));
          off += iov.len;
        }
        stats.pages += fill / PAGE;
        stats.bytes += fill;
        iovs = [];
        fill = 0;
      };
      for (let k = 0; k < spans.length; k += 2) {
        let first = spans[k]!;
        let count = spans[k + 1]!;
        while (count > 0) {
          const take = Math.min(count, (CHUNK - fill) / PAGE);
          iovs.push({ base: v.start + BigInt(first * PAGE), len: take * PAGE });
          fill += take * PAGE;
          first += take;
          count -= take;
          if (fill === CHUNK || iovs.length === 1024) flush();
        }
      }
      flush();
    }
  } finally {
    closeSync(pagemapFd);
    reader.close();
  }
  return stats;
}

export function dumpMemory(ctx: DumpContext, sink: PageSink, opts: MemoryDumpOptions = {}): { state: MemoryState; stats: MemoryDumpStats } {
  const files = new FileTable(ctx.pid);
  const shmem = new ShmemTable(ctx);
  const vmas = readSmaps(ctx.pid).map((e) => toVma(e, { files, shmem }));
  const stat = readStat(ctx.pid);
  const brk = BigInt.asUintN(64, ctx.remote.call(NR.brk, [0], 'brk'));
  let exePath: string;
  try {
    exePath = readlinkSync(`/proc/${ctx.pid}/exe`);
  } catch (e) {
    throw new CkptError('NO_PROCESS', `Cannot dump process ${ctx.pid}: cannot read its executable link`, { cause: e });
  }
  const deleted = exePath.endsWith(' (deleted)');
  const exe = files.add(deleted ? exePath.slice(0, -10) : exePath, deleted);
  const cow = opts.parent ? new CowFilter(opts.parent) : undefined;
  let stats: MemoryDumpStats;
  try {
    if (cow) for (const v of vmas) if (hasOwnPages(v)) cow.mark(v, (i) => files.files[i ?? -1]?.path);
    stats = dumpPages(ctx, vmas, { sink, cow });
    if (cow) stats.sharedWithParent = cow.omitted;
  } finally {
    cow?.close();
  }
  const state: MemoryState = {
    vmas,
    files: files.files,
    shmem: shmem.objects,
    mm: {
      startCode: stat.startCode, endCode: stat.endCode, startData: stat.startData, endData: stat.endData,
      startBrk: stat.startBrk, brk, startStack: stat.startStack, argStart: stat.argStart, argEnd: stat.argEnd,
      envStart: stat.envStart, envEnd: stat.envEnd,
    },
    auxv: readAuxv(ctx.pid).toString('base64'),
    exe,
  };
  return { state, stats };
}
