/**
 * Where the time of a large dump/restore goes, measured piece by piece on a live
 * bench-mem victim (one big anonymous area at a known address), and prototypes of
 * faster page paths. Nothing here is used by src/: these are measurements only.
 *
 *  - seize + release: PTRACE_SEIZE/INTERRUPT and detach, no memory touched;
 *  - process_vm_readv only: the area into a reused 4 MiB buffer (no file);
 *  - readv + writeSync: the old two-copy dump path (into a buffer, then write(2));
 *  - readv into an mmap'd image file: process_vm_readv straight into a MAP_SHARED
 *    mapping of a fallocate'd tmpfs file: ckpt's side of a dump (all of it below
 *    32 MiB; above, the target writes part itself in parallel, memory/split.ts);
 *  - pread into fresh anonymous memory: the target's side of a restore (allocate
 *    its pages and copy the page cache into them), done alone, on one CPU.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { seizeProcess } from '../src/infect/index.js';
import { addressOf, call, NR, vmRead } from '../src/sys/index.js';

const CHUNK = 4 * 1024 * 1024;
const NR_PREAD64 = 17;
const NR_FALLOCATE = 285;
const PROT_RW = 3;
const MAP_SHARED = 0x1;
const MAP_PRIVATE = 0x2;
const MAP_ANONYMOUS = 0x20;

export interface Area {
  pid: number;
  addr: bigint;
  len: number;
}

function ms(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function readAll(area: Area, each: (buf: Buffer, off: number) => void): void {
  const buf = Buffer.allocUnsafeSlow(CHUNK);
  for (let off = 0; off < area.len; off += CHUNK) {
    const n = Math.min(CHUNK, area.len - off);
    const part = n === CHUNK ? buf : buf.subarray(0, n);
    if (vmRead(area.pid, part, [{ base: area.addr + BigInt(off), len: n }]) !== n) throw new Error('short process_vm_readv');
    each(part, off);
  }
}

function mmap(args: { len: number; prot: number; flags: number; fd: number }): bigint {
  return call(NR.mmap, [0, args.len, args.prot, args.flags, args.fd, 0], { name: 'mmap' });
}

function munmap(addr: bigint, len: number): void {
  call(NR.munmap, [addr, len], { name: 'munmap' });
}

/** process_vm_readv into a shared mapping of the (preallocated) image file. */
function readIntoMappedFile(area: Area, file: string): void {
  const fd = fs.openSync(file, 'wx+', 0o600);
  try {
    call(NR_FALLOCATE, [fd, 0, 0, area.len], { name: 'fallocate' });
    const base = mmap({ len: area.len, prot: PROT_RW, flags: MAP_SHARED, fd });
    try {
      // iovecs are built by hand: the local side is the mapping, not a Buffer.
      const iov = Buffer.alloc(32);
      for (let off = 0; off < area.len; off += CHUNK) {
        const n = Math.min(CHUNK, area.len - off);
        iov.writeBigUInt64LE(base + BigInt(off), 0);
        iov.writeBigUInt64LE(BigInt(n), 8);
        iov.writeBigUInt64LE(area.addr + BigInt(off), 16);
        iov.writeBigUInt64LE(BigInt(n), 24);
        const got = call(NR.process_vm_readv, [area.pid, addressOf(iov), 1, addressOf(iov) + 16n, 1, 0], { name: 'process_vm_readv' });
        if (Number(got) !== n) throw new Error('short process_vm_readv');
      }
    } finally {
      munmap(base, area.len);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** pread of the whole file into freshly mapped anonymous memory, 1 GiB per call at most. */
function preadIntoFresh(file: string, len: number): void {
  const fd = fs.openSync(file, 'r');
  const base = mmap({ len, prot: PROT_RW, flags: MAP_PRIVATE | MAP_ANONYMOUS, fd: -1 });
  try {
    for (let off = 0; off < len;) {
      const n = Number(call(NR_PREAD64, [fd, base + BigInt(off), Math.min(len - off, 1 << 30), off], { name: 'pread64' }));
      if (n <= 0) throw new Error('short pread');
      off += n;
    }
  } finally {
    munmap(base, len);
    fs.closeSync(fd);
  }
}

export interface PhaseTimes {
  seizeRelease: number;
  vmReadOnly: number;
  readWrite: number;
  readIntoMmap: number;
  preadFresh: number;
}

/** Times each piece once on `area` (the victim keeps running; it is only read). */
export function measurePhases(area: Area, dir: string): PhaseTimes {
  const f1 = join(dir, 'phase-write.img');
  const f2 = join(dir, 'phase-mmap.img');
  const seizeRelease = ms(() => seizeProcess(area.pid).release());
  const vmReadOnly = ms(() => readAll(area, () => {}));
  const readWrite = ms(() => {
    const fd = fs.openSync(f1, 'wx', 0o600);
    readAll(area, (buf) => {
      for (let o = 0; o < buf.length;) o += fs.writeSync(fd, buf, o);
    });
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  });
  const preadFresh = ms(() => preadIntoFresh(f1, area.len));
  fs.rmSync(f1);
  const readIntoMmap = ms(() => readIntoMappedFile(area, f2));
  fs.rmSync(f2);
  return { seizeRelease, vmReadOnly, readWrite, readIntoMmap, preadFresh };
}
