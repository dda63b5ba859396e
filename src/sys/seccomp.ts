/**
 * Seccomp filters seen and installed from outside: PTRACE_SECCOMP_GET_FILTER and
 * PTRACE_SECCOMP_GET_METADATA read a stopped tracee's filters (the tracer needs
 * CAP_SYS_ADMIN); installing is done by the target itself (an injected seccomp(2)),
 * so only the constants and the struct layouts live here.
 */
import { call } from './call.js';
import { isErrno } from './error.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

const PTRACE_SECCOMP_GET_FILTER = 0x420c;
const PTRACE_SECCOMP_GET_METADATA = 0x420d;
export const SECCOMP = { SET_MODE_FILTER: 1 } as const;
export const SECCOMP_FILTER_FLAG = { TSYNC: 1, LOG: 2 } as const;
/** struct sock_filter: u16 code, u8 jt, u8 jf, u32 k. */
export const SOCK_FILTER_SIZE = 8;
/** BPF_MAXINSNS: the most instructions one filter may have. */
export const BPF_MAXINSNS = 4096;

/**
 * The instructions of filter `index` of thread `tid` (0 = the oldest), or undefined
 * past the newest (ENOENT).
 */
export function seccompFilter(tid: number, index: number): Buffer | undefined {
  const name = { name: `ptrace(PTRACE_SECCOMP_GET_FILTER, ${index})`, pid: tid };
  let count: number;
  try {
    count = Number(call(NR.ptrace, [PTRACE_SECCOMP_GET_FILTER, tid, index, 0], name));
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
  const buf = Buffer.alloc(count * SOCK_FILTER_SIZE);
  call(NR.ptrace, [PTRACE_SECCOMP_GET_FILTER, tid, index, addressOf(buf)], name);
  return buf;
}

/** The flags filter `index` of thread `tid` was installed with that the kernel keeps (SECCOMP_FILTER_FLAG_LOG). */
export function seccompFilterFlags(tid: number, index: number): number {
  const md = Buffer.alloc(16); // struct seccomp_metadata { u64 filter_off; u64 flags; }
  md.writeBigUInt64LE(BigInt(index), 0);
  call(NR.ptrace, [PTRACE_SECCOMP_GET_METADATA, tid, md.length, addressOf(md)], { name: `ptrace(PTRACE_SECCOMP_GET_METADATA, ${index})`, pid: tid });
  return Number(md.readBigUInt64LE(8));
}

/** struct sock_fprog for a program of `bytes` bytes at `filter`: u16 len, 6 bytes of padding, u64 pointer. */
export function encodeSockFprog(bytes: number, filter: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(bytes / SOCK_FILTER_SIZE, 0);
  b.writeBigUInt64LE(filter, 8);
  return b;
}
