/** ptrace(2) requests, one typed function each. No policy: see infect/ for that. */
import { call } from './call.js';
import { addressOf, type Arg } from './native.js';
import { NR } from './nr.js';
import { decodeRegs, encodeRegs, REGS_SIZE, type Regs } from './codecs/regs.js';
import { decodeSiginfo, SIGINFO_SIZE, type Siginfo } from './codecs/siginfo.js';
import { encodeIovecs } from './codecs/iovec.js';

export const PTRACE = {
  PEEKDATA: 2,
  PEEKUSER: 3,
  POKEDATA: 5,
  CONT: 7,
  KILL: 8,
  SINGLESTEP: 9,
  GETREGS: 12,
  SETREGS: 13,
  DETACH: 17,
  SYSCALL: 24,
  SETOPTIONS: 0x4200,
  GETEVENTMSG: 0x4201,
  GETSIGINFO: 0x4202,
  SETSIGINFO: 0x4203,
  GETREGSET: 0x4204,
  SETREGSET: 0x4205,
  SEIZE: 0x4206,
  INTERRUPT: 0x4207,
  LISTEN: 0x4208,
  PEEKSIGINFO: 0x4209,
  GETSIGMASK: 0x420a,
  SETSIGMASK: 0x420b,
  SECCOMP_GET_FILTER: 0x420c,
  GET_SYSCALL_INFO: 0x420e,
  GET_RSEQ_CONFIGURATION: 0x420f,
  GET_SYSCALL_USER_DISPATCH_CONFIG: 0x4211,
} as const;

export const PTRACE_O = {
  TRACESYSGOOD: 0x1,
  TRACEFORK: 0x2,
  TRACEVFORK: 0x4,
  TRACECLONE: 0x8,
  TRACEEXEC: 0x10,
  TRACEVFORKDONE: 0x20,
  TRACEEXIT: 0x40,
  TRACESECCOMP: 0x80,
  EXITKILL: 0x100000,
  SUSPEND_SECCOMP: 0x200000,
} as const;

export const PTRACE_EVENT = { FORK: 1, VFORK: 2, CLONE: 3, EXEC: 4, VFORK_DONE: 5, EXIT: 6, SECCOMP: 7, STOP: 128 } as const;

export const NT = { PRSTATUS: 1, PRFPREG: 2, X86_XSTATE: 0x202 } as const;

const NAMES: Record<number, string> = Object.fromEntries(Object.entries(PTRACE).map(([k, v]) => [v, `PTRACE_${k}`]));

function ptrace(req: number, pid: number, args: { addr?: Arg; data?: Arg } = {}): bigint {
  return call(NR.ptrace, [req, pid, args.addr ?? 0, args.data ?? 0], { name: `ptrace(${NAMES[req] ?? req})`, pid });
}

export function seize(pid: number, options = 0): void {
  ptrace(PTRACE.SEIZE, pid, { data: options });
}

export function interrupt(pid: number): void {
  ptrace(PTRACE.INTERRUPT, pid);
}

export function setOptions(pid: number, options: number): void {
  ptrace(PTRACE.SETOPTIONS, pid, { data: options });
}

/** Resume; `sig` is delivered to the tracee (0 = none). */
export function cont(pid: number, sig = 0): void {
  ptrace(PTRACE.CONT, pid, { data: sig });
}

/** Resume until the next syscall entry or exit. */
export function syscallStep(pid: number, sig = 0): void {
  ptrace(PTRACE.SYSCALL, pid, { data: sig });
}

export function singleStep(pid: number, sig = 0): void {
  ptrace(PTRACE.SINGLESTEP, pid, { data: sig });
}

/** Restart a group-stopped SEIZEd tracee in "listen" state (stays stopped, notifications still reported). */
export function listen(pid: number): void {
  ptrace(PTRACE.LISTEN, pid);
}

export function detach(pid: number, sig = 0): void {
  ptrace(PTRACE.DETACH, pid, { data: sig });
}

export function getRegs(pid: number): Regs {
  const buf = Buffer.alloc(REGS_SIZE);
  ptrace(PTRACE.GETREGS, pid, { data: addressOf(buf) });
  return decodeRegs(buf);
}

export function setRegs(pid: number, regs: Regs): void {
  setRegsRaw(pid, encodeRegs(regs));
}

/** SETREGS from an already encoded user_regs_struct (hot path of syscall injection). */
export function setRegsRaw(pid: number, buf: Buffer): void {
  ptrace(PTRACE.SETREGS, pid, { data: addressOf(buf) });
}

/** One word of the tracee's USER area, e.g. a register at its user_regs_struct offset. */
export function peekUser(pid: number, offset: number): bigint {
  const buf = Buffer.alloc(8);
  ptrace(PTRACE.PEEKUSER, pid, { addr: offset, data: addressOf(buf) });
  return buf.readBigUInt64LE(0);
}

/** PTRACE_GETREGSET: returns exactly the bytes the kernel filled (size comes back in the iovec). */
export function getRegset(pid: number, type: number, maxSize = 16384): Buffer {
  const buf = Buffer.alloc(maxSize);
  const iov = encodeIovecs([{ base: addressOf(buf), len: maxSize }]);
  ptrace(PTRACE.GETREGSET, pid, { addr: type, data: addressOf(iov) });
  const len = Number(iov.readBigUInt64LE(8));
  return Buffer.from(buf.subarray(0, len));
}

export function setRegset(pid: number, type: number, data: Buffer): void {
  const iov = encodeIovecs([{ base: addressOf(data), len: data.length }]);
  ptrace(PTRACE.SETREGSET, pid, { addr: type, data: addressOf(iov) });
}

/** Blocked signal mask of the tracee as a 64-bit set (bit n-1 = signal n). */
export function getSigmask(pid: number): bigint {
  const buf = Buffer.alloc(8);
  ptrace(PTRACE.GETSIGMASK, pid, { addr: 8, data: addressOf(buf) });
  return buf.readBigUInt64LE(0);
}

export function setSigmask(pid: number, mask: bigint): void {
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64LE(BigInt.asUintN(64, mask));
  ptrace(PTRACE.SETSIGMASK, pid, { addr: 8, data: addressOf(buf) });
}

export function getSiginfo(pid: number): Siginfo {
  const buf = Buffer.alloc(SIGINFO_SIZE);
  ptrace(PTRACE.GETSIGINFO, pid, { data: addressOf(buf) });
  return decodeSiginfo(buf);
}

/**
 * Pending signals without dequeuing them. `shared` selects the process-wide queue
 * instead of the thread's own.
 */
export function peekSiginfo(pid: number, opts: { shared: boolean; max?: number }): Siginfo[] {
  const out: Siginfo[] = [];
  const batch = 32;
  const buf = Buffer.alloc(batch * SIGINFO_SIZE);
  const args = Buffer.alloc(16);
  for (;;) {
    args.writeBigUInt64LE(BigInt(out.length), 0);
    args.writeUInt32LE(opts.shared ? 1 : 0, 8);
    args.writeInt32LE(batch, 12);
    const n = Number(ptrace(PTRACE.PEEKSIGINFO, pid, { addr: addressOf(args), data: addressOf(buf) }));
    for (let i = 0; i < n; i++) out.push(decodeSiginfo(buf.subarray(i * SIGINFO_SIZE)));
    if (n < batch || (opts.max !== undefined && out.length >= opts.max)) return out;
  }
}

export interface RseqConfig {
  abiPointer: bigint;
  abiSize: number;
  signature: number;
  flags: number;
}

export function getRseqConfiguration(pid: number): RseqConfig {
  const buf = Buffer.alloc(24);
  ptrace(PTRACE.GET_RSEQ_CONFIGURATION, pid, { addr: 24, data: addressOf(buf) });
  return {
    abiPointer: buf.readBigUInt64LE(0),
    abiSize: buf.readUInt32LE(8),
    signature: buf.readUInt32LE(12),
    flags: buf.readUInt32LE(16),
  };
}

/** struct ptrace_sud_config (Linux 6.4): syscall user dispatch of a thread; mode 0 is off. */
export function getSyscallUserDispatch(pid: number): { mode: bigint; selector: bigint; offset: bigint; len: bigint } {
  const buf = Buffer.alloc(32);
  ptrace(PTRACE.GET_SYSCALL_USER_DISPATCH_CONFIG, pid, { addr: 32, data: addressOf(buf) });
  return { mode: buf.readBigUInt64LE(0), selector: buf.readBigUInt64LE(8), offset: buf.readBigUInt64LE(16), len: buf.readBigUInt64LE(24) };
}

export function getEventMsg(pid: number): bigint {
  const buf = Buffer.alloc(8);
  ptrace(PTRACE.GETEVENTMSG, pid, { data: addressOf(buf) });
  return buf.readBigUInt64LE(0);
}

/** One word of tracee memory. The raw syscall stores the word at *data (unlike glibc's wrapper). */
export function peekData(pid: number, addr: bigint): bigint {
  const buf = Buffer.alloc(8);
  ptrace(PTRACE.PEEKDATA, pid, { addr, data: addressOf(buf) });
  return buf.readBigUInt64LE(0);
}

export function pokeData(pid: number, addr: bigint, word: bigint): void {
  ptrace(PTRACE.POKEDATA, pid, { addr, data: BigInt.asIntN(64, word) });
}

export interface SyscallInfo {
  op: 'none' | 'entry' | 'exit' | 'seccomp';
  nr?: bigint;
  args?: bigint[];
  rval?: bigint;
  isError?: boolean;
}

export function getSyscallInfo(pid: number): SyscallInfo {
  const buf = Buffer.alloc(88);
  ptrace(PTRACE.GET_SYSCALL_INFO, pid, { addr: buf.length, data: addressOf(buf) });
  const op = buf.readUInt8(0);
  if (op === 1 || op === 3) {
    const args = Array.from({ length: 6 }, (_, i) => buf.readBigUInt64LE(32 + i * 8));
    return { op: op === 1 ? 'entry' : 'seccomp', nr: buf.readBigUInt64LE(24), args };
  }
  if (op === 2) return { op: 'exit', rval: buf.readBigInt64LE(24), isError: buf.readUInt8(32) !== 0 };
  return { op: 'none' };
}
