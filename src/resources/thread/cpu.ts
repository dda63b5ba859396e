/**
 * Dumping and restoring a thread's CPU state. A thread stopped inside a syscall has
 * rax = -ERESTART* and orig_rax = the call; the kernel decides on resume whether it
 * restarts. One case cannot be left to it in a new process: -ERESTART_RESTARTBLOCK
 * restarts through restart_syscall(), whose saved arguments live in the old task, so
 * it would return EINTR. We turn it into -ERESTARTNOINTR: the call simply runs again
 * (a sleep or poll starts its timeout anew), which the program cannot tell from a
 * stop and continue.
 */
import { NT, ptrace, signed, type Regs } from '../../sys/index.js';
import type { ThreadCpu } from './state.js';

const ERESTARTNOINTR = -513n;
const ERESTART_RESTARTBLOCK = -516n;

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
