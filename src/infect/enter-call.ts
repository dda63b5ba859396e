/**
 * Letting go of a thread that waits in a call with a temporary signal mask.
 *
 * sigsuspend, ppoll, pselect6, epoll_pwait(2) and io_pgetevents install the mask they
 * are given for the wait and keep the thread's own in `saved_sigmask` (flag
 * TIF_RESTORE_SIGMASK); /proc/PID/status SigBlk shows the temporary one,
 * PTRACE_GETSIGMASK the thread's own. PTRACE_SETSIGMASK (RemoteTask, restore) clears
 * the flag, so when such a thread is let go its mask is its own, and the call it
 * restarts installs the temporary one again. Between the two, if the thread ran in
 * user space or took a signal with its own mask, a process-directed signal that its
 * temporary mask blocks could be delivered to it (and end its wait with EINTR, when
 * another thread was the one meant to take it). So such a thread is stepped into its
 * call with every signal blocked, and gets its own mask back at the syscall-entry stop,
 * in the kernel; the call then saves that mask and installs its temporary one, as the
 * first time. A signal that comes meanwhile waits in the queue (or is moved to another
 * thread by the kernel when the temporary mask blocks it).
 */
import { isErrno, NR, ptrace, signed, type Regs } from '../sys/index.js';
import { RESTART } from './frame.js';
import { TaskGoneError, waitStop } from './wait.js';

const SYSCALL_STOP = 5 | 0x80;
const ALL_SIGNALS = 0xffffffffffffffffn;
const SYSCALL_INSN = 0x050fn; // 0f 05, little-endian

/** Calls that wait with a mask of their own and keep the thread's in saved_sigmask. */
const TEMP_MASK_CALLS = new Set([NR.rt_sigsuspend, NR.ppoll, NR.pselect6, NR.epoll_pwait, NR.epoll_pwait2, NR.io_pgetevents].map(BigInt));
const RESTART_CODES = new Set<bigint>(Object.values(RESTART));

/**
 * Whether the thread, let go now, runs one of those calls again at once: interrupted
 * in it with a restart code (an interrupt stop: the kernel rewinds it), or rewound by
 * hand (restore: rip on a syscall instruction, rax the call, orig_rax -1).
 */
function reentersTempMaskCall(tid: number, regs: Regs): boolean {
  const nr = signed(regs.orig_rax);
  if (nr >= 0n) return TEMP_MASK_CALLS.has(nr) && RESTART_CODES.has(signed(regs.rax));
  return TEMP_MASK_CALLS.has(signed(regs.rax)) && (ptrace.peekData(tid, regs.rip) & 0xffffn) === SYSCALL_INSN;
}

/**
 * Steps a stopped thread that is about to run such a call again to its syscall-entry
 * stop (see the file comment). Returns the signal to detach with: 0, or one that
 * stopped the thread on the way (SIGSTOP sent to a process that was stopped at dump),
 * which it then goes on to handle as it would have.
 */
function enterWaitingCall(tid: number): number {
  if (!reentersTempMaskCall(tid, ptrace.getRegs(tid))) return 0;
  const mask = ptrace.getSigmask(tid);
  ptrace.setSigmask(tid, ALL_SIGNALS);
  ptrace.syscallStep(tid);
  const st = waitStop(tid);
  ptrace.setSigmask(tid, mask);
  return st.event === 0 && st.signal !== SYSCALL_STOP ? st.signal : 0;
}

/** PTRACE_DETACH of a stopped thread, into its waiting call first if it waits with a temporary mask. */
export function detachThread(tid: number): void {
  let sig = 0;
  try {
    sig = enterWaitingCall(tid);
  } catch (e) {
    // Gone, or not in a stop we hold (a seize that failed half-way): detach says which.
    if (!(e instanceof TaskGoneError) && !isErrno(e, 'ESRCH')) throw e;
  }
  ptrace.detach(tid, sig);
}
