/** Reading and writing another process's memory: process_vm_readv/writev. */
import { call } from './call.js';
import { isErrno } from './error.js';
import { peekData, pokeData } from './ptrace.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';
import { encodeIovecs, type Iovec } from './codecs/iovec.js';

/** Kernel limit on iovecs per call (UIO_MAXIOV). */
export const IOV_MAX = 1024;

/**
 * Reads remote ranges into `local` (contiguous, in order). Returns bytes read, which
 * may be short when a range faults; the caller decides what a short read means.
 */
export function vmRead(pid: number, local: Buffer, remote: readonly Iovec[]): number {
  const liov = encodeIovecs([{ base: addressOf(local), len: local.length }]);
  const riov = encodeIovecs(remote);
  return Number(call(NR.process_vm_readv, [pid, addressOf(liov), 1, addressOf(riov), remote.length, 0], { name: 'process_vm_readv', pid }));
}

export function vmWrite(pid: number, local: Buffer, remote: readonly Iovec[]): number {
  const liov = encodeIovecs([{ base: addressOf(local), len: local.length }]);
  const riov = encodeIovecs(remote);
  return Number(call(NR.process_vm_writev, [pid, addressOf(liov), 1, addressOf(riov), remote.length, 0], { name: 'process_vm_writev', pid }));
}

/** Reads exactly len bytes at addr, or throws. */
export function readMemory(pid: number, addr: bigint, len: number): Buffer {
  const buf = Buffer.alloc(len);
  let n: number;
  try {
    n = vmRead(pid, buf, [{ base: addr, len }]);
  } catch (e) {
    // As writeMemory: a tracee made non-dumpable by a credential change is read by PEEKDATA.
    if (!isErrno(e, 'EPERM')) throw e;
    return peekMemory(pid, addr, len);
  }
  if (n !== len) throw new RangeError(`short read of pid ${pid} memory at 0x${addr.toString(16)}: ${n} of ${len} bytes`);
  return buf;
}

export function writeMemory(pid: number, addr: bigint, data: Buffer): void {
  let n: number;
  try {
    n = vmWrite(pid, data, [{ base: addr, len: data.length }]);
  } catch (e) {
    // A tracee whose credentials were just changed is not dumpable: as its tracer, poke.
    if (!isErrno(e, 'EPERM')) throw e;
    return pokeMemory(pid, addr, data);
  }
  if (n !== data.length) throw new RangeError(`short write to pid ${pid} memory at 0x${addr.toString(16)}: ${n} of ${data.length} bytes`);
}

/** PTRACE_POKEDATA word by word (the first and last words read first where only part of them changes). */
function pokeMemory(pid: number, addr: bigint, data: Buffer): void {
  const start = addr & ~7n;
  const end = (addr + BigInt(data.length) + 7n) & ~7n;
  const buf = Buffer.alloc(Number(end - start));
  buf.writeBigUInt64LE(peekData(pid, start), 0);
  if (end - start > 8n) buf.writeBigUInt64LE(peekData(pid, end - 8n), buf.length - 8);
  data.copy(buf, Number(addr - start));
  for (let off = 0; off < buf.length; off += 8) pokeData(pid, start + BigInt(off), buf.readBigUInt64LE(off));
}

/** PTRACE_PEEKDATA word by word. */
function peekMemory(pid: number, addr: bigint, len: number): Buffer {
  const start = addr & ~7n;
  const end = (addr + BigInt(len) + 7n) & ~7n;
  const buf = Buffer.alloc(Number(end - start));
  for (let off = 0; off < buf.length; off += 8) buf.writeBigUInt64LE(peekData(pid, start + BigInt(off)), off);
  return Buffer.from(buf.subarray(Number(addr - start), Number(addr - start) + len));
}
