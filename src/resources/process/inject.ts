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
  const gathered = gatherings.get(remote.tid);
  if (gathered) return gathered.answer([c])[0]!.out;
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
  const gathered = gatherings.get(remote.tid);
  if (gathered) return gathered.answer(calls);
  return runCallsOut(remote, calls);
}

function runCallsOut(remote: RemoteTask, calls: readonly StructOut[]): { ret: bigint; out: Buffer }[] {
  // A recoverable thread (a dump) runs its calls one by one anyway: as callOut does, in its scratch.
  if (remote.recoverable) {
    return calls.map((c) => {
      const addr = remote.scratch(Math.max(c.size, 1));
      remote.write(addr, Buffer.alloc(Math.max(c.size, 1)));
      const ret = remote.call(c.nr, c.args(addr), c.name);
      return { ret, out: remote.read(addr, c.size) };
    });
  }
  // Every struct in one zeroed block: one write before the batch and one read after it.
  const offsets: number[] = [];
  let total = 0;
  for (const c of calls) {
    offsets.push(total);
    total += Math.ceil(Math.max(c.size, 8) / 8) * 8;
  }
  let base = 0n;
  const results = remote.batch(() => {
    base = remote.put(Buffer.alloc(total));
    for (const [i, c] of calls.entries()) remote.call(c.nr, c.args(base + BigInt(offsets[i]!)), c.name);
  });
  if (results.length !== calls.length) throw new CkptError('INTERNAL', `Cannot read task ${remote.tid}: callsOut inside another batch`);
  const block = calls.some((c) => c.size > 0) ? remote.read(base, total) : Buffer.alloc(0);
  return calls.map((c, i) => ({ ret: results[i]!, out: c.size > 0 ? Buffer.from(block.subarray(offsets[i]!, offsets[i]! + c.size)) : Buffer.alloc(0) }));
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

type Answer = { ret: bigint; out: Buffer } | { error: unknown };

/** A call's identity for the gathered answers: its arguments with a stand-in for the struct's address. */
const OUT_ADDR = 0x5ca7c4ed0000n;
const keyOf = (c: StructOut) => `${c.nr} ${c.name} ${c.size} ${c.args(OUT_ADDR).map(String).join(',')}`;

/** The reads of one task while they are gathered (gatherReads). */
class Gathering {
  readonly answers = new Map<string, Answer>();
  readonly wanted = new Map<string, StructOut>();
  /** A read was answered with zeros since the last reset. */
  missed = false;

  answer(calls: readonly StructOut[]): { ret: bigint; out: Buffer }[] {
    return calls.map((c) => {
      const key = keyOf(c);
      const a = this.answers.get(key);
      if (a && 'error' in a) throw a.error;
      if (a) return a;
      this.missed = true;
      this.wanted.set(key, c);
      return { ret: 0n, out: Buffer.alloc(c.size) };
    });
  }

  /** Runs every wanted read with one stop; where one fails, each on its own, so that only it fails. */
  run(remote: RemoteTask): void {
    const calls = [...this.wanted.values()];
    const keys = [...this.wanted.keys()];
    this.wanted.clear();
    if (calls.length === 0) return;
    try {
      runCallsOut(remote, calls).forEach((a, i) => this.answers.set(keys[i]!, a));
    } catch {
      calls.forEach((c, i) => {
        try {
          this.answers.set(keys[i]!, runCallsOut(remote, [c])[0]!);
        } catch (error) {
          this.answers.set(keys[i]!, { error });
        }
      });
    }
  }
}

const gatherings = new Map<number, Gathering>();

/** Rounds of gathered reads before the steps left run with their reads made one by one. */
const MAX_ROUNDS = 3;

/**
 * Runs `steps` (collectors reading one task, for restore --check) with all their
 * injected reads made with one stop (RemoteTask.batch) instead of one or two per
 * collector. Each step reads and returns what uses the reading (a comparison), which
 * runs only once the reading came from real answers. While reads are gathered, callOut
 * and callsOut answer a read made in an earlier round, or note it and answer zeros; a
 * step answered zeros is dropped (its result, or its error) and read again once every
 * noted read has run, together. So a step must be safe to read again, and do nothing
 * that counts before its use. The reads themselves are those made without gathering.
 */
export function gatherReads(remote: RemoteTask, steps: readonly (() => () => void)[]): void {
  const g = new Gathering();
  gatherings.set(remote.tid, g);
  try {
    let todo = steps;
    for (let round = 0; todo.length > 0; round++) {
      // Reads that depend on reads: after a few rounds, the rest read one by one.
      if (round === MAX_ROUNDS) gatherings.delete(remote.tid);
      const again: (() => () => void)[] = [];
      for (const step of todo) {
        g.missed = false;
        let use: (() => void) | undefined;
        try {
          use = step();
        } catch (e) {
          if (!g.missed) throw e;
        }
        if (g.missed) again.push(step);
        else use!();
      }
      g.run(remote);
      todo = again;
    }
  } finally {
    gatherings.delete(remote.tid);
  }
}
