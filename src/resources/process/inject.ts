/**
 * Small helpers for the injected syscalls of this directory: pass a struct in, or get
 * one back, through the RemoteTask's scratch area. The scratch area is one buffer
 * reused by every call, so each helper finishes with it before returning.
 */
import { CkptError } from '../../common/errors.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Arg } from '../../sys/index.js';

export interface StructOut {
  nr: number;
  /** Syscall name for errors, e.g. 'rt_sigaction'. */
  name: string;
  /** Bytes the kernel fills. */
  size: number;
  /** The syscall arguments, given the address of the output buffer. */
  args: (addr: bigint) => Arg[];
}

/** Runs a syscall that writes a struct into target memory; returns the struct's bytes. */
export function callOut(remote: RemoteTask, c: StructOut): Buffer {
  const addr = remote.scratch(c.size);
  // Zeroed first, so a field the kernel leaves alone reads as 0 rather than as stale bytes.
  remote.write(addr, Buffer.alloc(c.size));
  remote.call(c.nr, c.args(addr), c.name);
  return remote.read(addr, c.size);
}

/**
 * Several calls of callOut's kind (size 0: only the result counts) with one stop for
 * all (RemoteTask.batch; call by call where the batch cannot run). Each call has its own
 * zeroed struct; returns each call's result and struct bytes, in order.
 */
export function callsOut(remote: RemoteTask, calls: readonly StructOut[]): { ret: bigint; out: Buffer }[] {
  // A recoverable thread (a dump) runs its calls one by one anyway: as callOut does, in its scratch.
  if (remote.recoverable) {
    return calls.map((c) => {
      const addr = remote.scratch(Math.max(c.size, 1));
      remote.write(addr, Buffer.alloc(Math.max(c.size, 1)));
      const ret = remote.call(c.nr, c.args(addr), c.name);
      return { ret, out: remote.read(addr, c.size) };
    });
  }
  const addrs: bigint[] = [];
  const results = remote.batch(() => {
    for (const c of calls) {
      const addr = remote.put(Buffer.alloc(Math.max(c.size, 8)));
      addrs.push(addr);
      remote.call(c.nr, c.args(addr), c.name);
    }
  });
  if (results.length !== calls.length) throw new CkptError('INTERNAL', `Cannot read task ${remote.tid}: callsOut inside another batch`);
  return calls.map((c, i) => ({ ret: results[i]!, out: c.size > 0 ? remote.read(addrs[i]!, c.size) : Buffer.alloc(0) }));
}

export interface StructIn {
  nr: number;
  name: string;
  data: Buffer;
  args: (addr: bigint) => Arg[];
}

/** Copies `data` into the target and runs a syscall that reads it; returns the result. */
export function callIn(remote: RemoteTask, c: StructIn): bigint {
  const addr = remote.scratch(Math.max(c.data.length, 1));
  remote.write(addr, c.data);
  return remote.call(c.nr, c.args(addr), c.name);
}

/** A NUL-terminated C string. */
export function cString(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, 'utf8'), Buffer.alloc(1)]);
}

/** Bit of signal `signo` in a 64-bit signal set (bit n-1 = signal n). */
export function sigBit(signo: number): bigint {
  return 1n << BigInt(signo - 1);
}
