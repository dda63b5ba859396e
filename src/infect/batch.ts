/**
 * Batched injected syscalls (RemoteTask.batch): a small stub in the scratch area runs
 * a table of calls and stops with int3 after the last or at the first error, so a
 * batch costs one stop instead of two per call.
 */
import { CkptError } from '../common/errors.js';
import { ptrace, PTRACE_EVENT, readMemory, REG_NAMES, SysError, writeMemory, type Arg, type Regs } from '../sys/index.js';
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

/** Byte offsets in user_regs_struct. */
const REG = Object.fromEntries(REG_NAMES.map((n, i) => [n, i * 8])) as Record<(typeof REG_NAMES)[number], number>;

/** What a batch needs of its RemoteTask. */
export interface BatchTask {
  tid: number;
  /** The thread's saved registers, encoded (RemoteTask's buffer: rbx and r12 are put back after use). */
  regs: Buffer;
  savedRegs: Regs;
  /** The scratch area: the calls' arguments from its start, the table after them (`arena`), the code at its end. */
  area: { addr: bigint; size: number };
  arena: number;
  onEvent: ((e: { event: number; msg: bigint }) => void) | undefined;
  /** Called as each part starts running, with its number of calls. */
  started(n: number): void;
}

/**
 * Runs queued calls with the stub. The table follows the arguments; what the rest of the
 * scratch area cannot hold runs in parts, each stopping at its first error as one batch
 * would (a caller with thousands of calls maps a larger scratch area first: restore's
 * mmaps, issue 13). Returns the results, in order.
 */
export function runQueued(t: BatchTask, queued: readonly QueuedCall[]): bigint[] {
  const room = Math.floor((t.area.size - t.arena - STUB_ROOM) / 64);
  const results: bigint[] = [];
  for (let i = 0; i < queued.length; i += room) results.push(...runPart(t, queued.slice(i, i + room)));
  return results;
}

function runPart(t: BatchTask, queued: readonly QueuedCall[]): bigint[] {
  const table = t.area.addr + BigInt(t.arena);
  const code = t.area.addr + BigInt(t.area.size - BATCH_STUB.length);
  const encoded = encodeBatch(queued);
  writeMemory(t.tid, table, encoded);
  writeMemory(t.tid, code, BATCH_STUB);
  const buf = t.regs;
  buf.writeBigUInt64LE(code, REG.rip);
  buf.writeBigUInt64LE(table, REG.rbx);
  buf.writeBigUInt64LE(BigInt(queued.length), REG.r12);
  buf.writeBigUInt64LE(0xffffffffffffffffn, REG.orig_rax);
  ptrace.setRegsRaw(t.tid, buf);
  buf.writeBigUInt64LE(t.savedRegs.rbx, REG.rbx);
  buf.writeBigUInt64LE(t.savedRegs.r12, REG.r12);
  t.started(queued.length);
  ptrace.cont(t.tid);
  awaitBatch(t.tid, t.onEvent);
  const results = readMemory(t.tid, table, encoded.length);
  throwFirstError(t.tid, { results, queued });
  return queued.map((_q, i) => results.readBigInt64LE(i * 64 + 56));
}
