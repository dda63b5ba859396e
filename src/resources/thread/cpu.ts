/**
 * Dumping and restoring a thread's CPU state. A thread stopped inside a syscall has
 * rax = -ERESTART* and orig_rax = the call; the kernel decides on resume whether it
 * restarts. One case cannot be left to it in a new process: -ERESTART_RESTARTBLOCK
 * restarts through restart_syscall(), whose saved arguments live in the old task, so
 * it would return EINTR. We turn it into -ERESTARTNOINTR: the call simply runs again
 * (a sleep or poll starts its timeout anew), which the program cannot tell from a
 * stop and continue.
 */
import { readStatus } from '../../proc/index.js';
import { NR, NT, ptrace, signed, type Regs } from '../../sys/index.js';
import { RESTART } from '../../infect/index.js';
import type { ThreadCpu } from './state.js';

const { NOINTR: ERESTARTNOINTR, RESTARTBLOCK: ERESTART_RESTARTBLOCK } = RESTART;

export function dumpCpu(tid: number): ThreadCpu {
  return {
    tid,
    regs: ptrace.getRegs(tid),
    xstate: ptrace.getRegset(tid, NT.X86_XSTATE).toString('base64'),
  };
}

/** The registers to resume a restored thread with. */
export function resumeRegs(saved: Regs): Regs {
  const regs = { ...saved };
  if (signed(regs.orig_rax) >= 0n && signed(regs.rax) === ERESTART_RESTARTBLOCK) regs.rax = BigInt.asUintN(64, ERESTARTNOINTR);
  return regs;
}

/** Loads the FPU/vector state; general registers go in last, through RemoteTask.finish. */
export function restoreXstate(tid: number, cpu: ThreadCpu): void {
  ptrace.setRegset(tid, NT.X86_XSTATE, Buffer.from(cpu.xstate, 'base64'));
}

/**
 * Registers for a thread let go straight from a syscall stop (RemoteTask.finish with
 * `direct`): an interrupted syscall is rewound by hand to run again, as the kernel
 * would on the way out of a stop with no signal to deliver.
 */
export { rewoundRegs } from '../../infect/index.js';

const EINTR = -4n;
/** Calls that end with a plain -EINTR when a stop (ours included) interrupts them: no -ERESTART* to rely on. */
const EINTR_ON_STOP = new Set(
  [NR.semop, NR.semtimedop, NR.epoll_wait, NR.epoll_pwait, NR.epoll_pwait2, NR.rt_sigtimedwait, NR.io_getevents, NR.io_pgetevents].map(BigInt),
);

/**
 * PTRACE_INTERRUPT wakes a thread blocked in semop/semtimedop, epoll_wait, sigtimedwait
 * or io_getevents, which then returns -EINTR instead of a restart code (signal(7): they
 * fail with EINTR after a stop even without a handler). Left so, the program sees EINTR after a leave-running dump and
 * after restore. When no signal waits to be delivered to the thread, the EINTR can only
 * be our stop's, so the thread is given -ERESTARTNOINTR now: the call runs again on
 * resume (a semtimedop with its whole timeout), and the dump saves it that way.
 */
export function restartInterruptedWait(tid: number): void {
  const regs = ptrace.getRegs(tid);
  if (!EINTR_ON_STOP.has(signed(regs.orig_rax)) || signed(regs.rax) !== EINTR) return;
  const st = readStatus(tid);
  if (((st.sigPnd | st.shdPnd) & ~st.sigBlk) !== 0n) return;
  ptrace.setRegs(tid, { ...regs, rax: BigInt.asUintN(64, ERESTARTNOINTR) });
}
