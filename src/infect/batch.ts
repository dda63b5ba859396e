/**
 * Batched injected syscalls (RemoteTask.batch): a small stub in the scratch area runs
 * a table of calls and stops with int3 after the last or at the first error, so a
 * batch costs one stop instead of two per call.
 */
import { CkptError } from '../common/errors.js';
import { ptrace, PTRACE_EVENT, SysError, type Arg } from '../sys/index.js';
import { readStatus } from '../proc/index.js';
import { waitStop } from './wait.js';

const SIGTRAP = 5;

/** A call's name for errors, or a function making it (only called on an error). */
export type CallName = string | (() => string);

export function nameOf(name: CallName): string {
  return typeof name === 'string' ? name : name();
}

export interface QueuedCall {
  nr: number;
  args: readonly Arg[];
  name: CallName;
}

/**
 * loop: load rax, rdi, rsi, rdx, r10, r8, r9 from the entry at rbx; syscall; store rax
 * at rbx+56; stop if it is an error; rbx += 64; loop while --r12; then int3.
 */
export const BATCH_STUB = Buffer.from([
  0x48, 0x8b, 0x03, 0x48, 0x8b, 0x7b, 0x08, 0x48, 0x8b, 0x73, 0x10, 0x48, 0x8b, 0x53, 0x18, 0x4c, 0x8b, 0x53, 0x20,
  0x4c, 0x8b, 0x43, 0x28, 0x4c, 0x8b, 0x4b, 0x30, 0x0f, 0x05, 0x48, 0x89, 0x43, 0x38, 0x48, 0x3d, 0x01, 0xf0, 0xff,
  0xff, 0x73, 0x09, 0x48, 0x83, 0xc3, 0x40, 0x49, 0xff, 0xcc, 0x75, 0xce, 0xcc,
]);
/**
 * The table of calls follows the batch's arguments (put() while queued), and the code
 * sits in the last STUB_ROOM bytes of the scratch area; arguments leave at least
 * BATCH_TAIL bytes for the two, so a batch part holds (BATCH_TAIL - STUB_ROOM) / 64 calls or more.
 */
export const BATCH_TAIL = 4096;
export const STUB_ROOM = 128;
export const BATCH_SCRATCH = 16384;

/**
 * Whether a batch may stop on int3: only while SIGTRAP has its default disposition. The
 * kernel forces the int3's SIGTRAP, and a forced signal that is blocked (an injection
 * blocks every signal) or ignored gets its disposition reset to SIG_DFL: a program's
 * SIGTRAP handler (vim, bash) or SIG_IGN would be lost, so such a process's batches go
 * call by call. Read for every batch, since a restore sets the dispositions between
 * batches.
 */
export function sigtrapIsDefault(tid: number): boolean {
  try {
    const st = readStatus(tid);
    return (((st.sigIgn | st.sigCgt) >> 4n) & 1n) === 0n;
  } catch {
    return false;
  }
}

/** The table the stub reads: per call, nr and six arguments; the result lands at +56. */
export function encodeBatch(queued: readonly QueuedCall[]): Buffer {
  const t = Buffer.alloc(queued.length * 64);
  for (let i = 0; i < queued.length; i++) {
    const q = queued[i]!;
    t.writeUInt32LE(q.nr, i * 64);
    for (let k = 0; k < 6; k++) writeArg(t, { at: i * 64 + 8 + k * 8, v: q.args[k] ?? 0 });
  }
  return t;
}

/** A 64-bit argument; small non-negative numbers (most) without a BigInt (a batch may hold 10 000 mmaps). */
function writeArg(t: Buffer, arg: { at: number; v: Arg }): void {
  const { at, v } = arg;
  if (typeof v === 'number' && v >= 0 && v <= 0xffffffff && Number.isInteger(v)) t.writeUInt32LE(v, at);
  else t.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v)), at);
}

/** Lets the stub run to its int3, passing on the events of tasks a batched clone made. */
export function awaitBatch(tid: number, onEvent: ((e: { event: number; msg: bigint }) => void) | undefined): void {
  for (;;) {
    const st = waitStop(tid);
    if (st.event === 0 && st.signal === SIGTRAP) return;
    if (st.event !== 0) {
      // A job-control trap, or a task created by a batched clone (it waits in its own first stop).
      if (st.event !== PTRACE_EVENT.STOP) onEvent?.({ event: st.event, msg: ptrace.getEventMsg(tid) });
      ptrace.cont(tid);
      continue;
    }
    throw new CkptError('INTERNAL', `Cannot run batched syscalls in task ${tid}: unexpected stop (signal ${st.signal}, event ${st.event})`);
  }
}

/** Throws, as call() would, for the first call of the batch that failed. */
export function throwFirstError(tid: number, args: { results: Buffer; queued: readonly QueuedCall[] }): void {
  for (let i = 0; i < args.queued.length; i++) {
    // -4095..-1: the high word is all ones and the low one above 0xfffff000.
    if (args.results.readInt32LE(i * 64 + 60) !== -1 || args.results.readUInt32LE(i * 64 + 56) <= 0xfffff000) continue;
    throw new SysError(`${nameOf(args.queued[i]!.name)} (injected)`, -args.results.readInt32LE(i * 64 + 56), tid);
  }
}
