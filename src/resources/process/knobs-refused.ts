/**
 * Per-thread prctl/arch_prctl states that ckpt does not save: speculation control
 * (store bypass, indirect branch, L1D flush), the machine-check kill policy, the TSC
 * and CPUID faulting modes. A restored thread starts with the restorer's (a fork of
 * ckpt), so a thread whose value differs from ckpt's own is refused at dump, naming
 * the knob; equal values come back as they were.
 *
 * A Landlock domain (landlock_restrict_self, per thread) is shown by no interface and
 * cannot be built again: a restored thread would run outside its sandbox. It is found
 * by what it forbids: a thread in a domain may not ptrace-access a process outside it,
 * such as ckpt. The thread is asked to kcmp() itself with ckpt; where only Landlock (or
 * another LSM) can refuse that, the thread holding CAP_SYS_PTRACE, EPERM means a
 * domain. A thread without CAP_SYS_PTRACE is refused by the capability checks anyway
 * (ckpt is root): its domain goes unnoticed (docs/saved-state.md).
 */
import { CkptError } from '../../common/errors.js';
import { readTaskStatus } from '../../proc/index.js';
import { addressOf, isErrno, NR, ptrace, rawSyscall } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import { callOut } from './inject.js';

const PR_GET_SPECULATION_CTRL = 52;
const PR_MCE_KILL_GET = 34;
const PR_GET_TSC = 25;
const ARCH_GET_CPUID = 0x1011;

interface Knob {
  what: string;
  /** The value in a thread, read by injection; undefined where the kernel has no such knob. */
  remote: (r: RemoteTask) => bigint | undefined;
  /** The same in ckpt's own thread. */
  local: () => bigint | undefined;
}

const ok = (r: bigint) => (r < 0n && r > -4096n ? undefined : r);
const localRet = (nr: number, args: (number | bigint)[]) => {
  const r = rawSyscall(nr, args);
  return r.ret === -1n ? undefined : r.ret;
};

const spec = (which: number, what: string): Knob => ({
  what: `speculation control (${what})`,
  remote: (r) => ok(r.raw(NR.prctl, [PR_GET_SPECULATION_CTRL, which, 0, 0, 0], 'prctl(PR_GET_SPECULATION_CTRL)')),
  local: () => localRet(NR.prctl, [PR_GET_SPECULATION_CTRL, which, 0, 0, 0]),
});

const KNOBS: Knob[] = [
  spec(0, 'store bypass'),
  spec(1, 'indirect branch'),
  spec(2, 'L1D flush'),
  {
    what: 'machine-check kill policy (PR_MCE_KILL)',
    remote: (r) => ok(r.raw(NR.prctl, [PR_MCE_KILL_GET, 0, 0, 0, 0], 'prctl(PR_MCE_KILL_GET)')),
    local: () => localRet(NR.prctl, [PR_MCE_KILL_GET, 0, 0, 0, 0]),
  },
  {
    what: 'TSC mode (PR_SET_TSC)',
    remote: (r) => {
      try {
        return BigInt(callOut(r, { nr: NR.prctl, name: 'prctl(PR_GET_TSC)', size: 4, args: (addr) => [PR_GET_TSC, addr] }).readInt32LE(0));
      } catch {
        return undefined;
      }
    },
    local: () => {
      const b = Buffer.alloc(4);
      return localRet(NR.prctl, [PR_GET_TSC, addressOf(b)]) === undefined ? undefined : BigInt(b.readInt32LE(0));
    },
  },
  {
    what: 'CPUID faulting (ARCH_SET_CPUID)',
    remote: (r) => ok(r.raw(NR.arch_prctl, [ARCH_GET_CPUID, 0], 'arch_prctl(ARCH_GET_CPUID)')),
    local: () => localRet(NR.arch_prctl, [ARCH_GET_CPUID, 0]),
  },
];

let ours: (bigint | undefined)[] | undefined;

/** Throws UNSUPPORTED for the first knob of thread `tid` that differs from ckpt's. */
export function refuseUnsavedKnobs(remote: RemoteTask, ids: { pid: number; tid: number }): void {
  ours ??= KNOBS.map((k) => k.local());
  KNOBS.forEach((k, i) => {
    const mine = ours![i];
    if (mine === undefined) return;
    const theirs = k.remote(remote);
    if (theirs !== undefined && theirs !== mine) {
      throw new CkptError('UNSUPPORTED', `Cannot dump thread ${ids.tid} of process ${ids.pid}: its ${k.what} is ${theirs} (ckpt's is ${mine}), which is not saved`);
    }
  });
}

const KCMP_VM = 0;
const EPERM = -1n;
const CAP_SYS_PTRACE = 19n;

/** Throws UNSUPPORTED when thread `tid` is in a Landlock domain (see the file comment). */
export function refuseSandboxed(remote: RemoteTask, ids: { pid: number; tid: number }): void {
  const r = remote.raw(NR.kcmp, [ids.pid, process.pid, KCMP_VM, 0, 0], 'kcmp(ckpt)');
  if (r !== EPERM) return;
  if ((readTaskStatus(ids.pid, ids.tid).capEff & (1n << CAP_SYS_PTRACE)) === 0n) return;
  throw new CkptError('UNSUPPORTED', `Cannot dump thread ${ids.tid} of process ${ids.pid}: it is in a Landlock domain (or another security module's confinement): it may not access ckpt with CAP_SYS_PTRACE, and its sandbox is not saved`);
}

/**
 * Syscall user dispatch (PR_SET_SYSCALL_USER_DISPATCH: Wine) is not saved: a restored
 * thread would run natively the syscalls it had dispatched to its SIGSYS handler. Checked
 * with PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG before anything is injected, since with the
 * selector at BLOCK an injected syscall would raise SIGSYS in the thread instead.
 */
export function refuseSyscallDispatch(ids: { pid: number; tid: number }): void {
  let mode: bigint;
  try {
    mode = ptrace.getSyscallUserDispatch(ids.tid).mode;
  } catch (e) {
    if (isErrno(e, 'EIO') || isErrno(e, 'EINVAL')) return; // a kernel before 6.4
    throw e;
  }
  if (mode !== 0n) {
    throw new CkptError('UNSUPPORTED', `Cannot dump thread ${ids.tid} of process ${ids.pid}: it has syscall user dispatch on (PR_SET_SYSCALL_USER_DISPATCH), which is not saved`);
  }
}
