/**
 * The blocked-signal mask of one thread (for now the thread the RemoteTask drives,
 * the thread group leader; other threads will get one state each).
 *
 * Dump cannot ask the kernel: RemoteTask blocks every signal while it borrows the
 * thread, so PTRACE_GETSIGMASK would return "all". The RemoteTask kept the original
 * mask in `savedMask`; that is the state.
 *
 * A thread waiting in sigsuspend, ppoll, pselect6, epoll_pwait(2) or io_pgetevents has
 * a temporary mask installed by that call (/proc/PID/status SigBlk shows it) and its
 * own in saved_sigmask: PTRACE_GETSIGMASK returns saved_sigmask then, so the saved mask
 * is the thread's own. The call is restarted after restore and installs its temporary
 * mask again; infect/enter-call.ts lets such a thread go with no window in which its
 * own mask is in force outside the call. (rt_sigtimedwait puts the thread's mask back
 * before it returns to the stop: nothing is temporary there.)
 *
 * Restore injects nothing, for the same reason: whatever mask we set now, the
 * RemoteTask replaces when it finishes. The orchestrator passes the saved mask to
 * `remote.finish({ mask: finalSigmask(state) })` instead, which is also the right
 * moment: pending signals restored earlier stay blocked until then.
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { ptrace, SIG } from '../../sys/index.js';
import type { Resource } from '../types.js';
import { sigBit } from './inject.js';

export interface SigmaskState {
  /** The thread the mask belongs to (its id at dump time). */
  tid: number;
  /** Blocked signals, bit n-1 = signal n. */
  mask: bigint;
}

export const sigmaskSchema: z.ZodType<SigmaskState> = z.object({
  tid: z.number().int().positive(),
  mask: zBig,
});

/** The mask to hand to RemoteTask.finish: SIGKILL and SIGSTOP can never be blocked. */
export function finalSigmask(state: SigmaskState): bigint {
  return BigInt.asUintN(64, state.mask) & ~(sigBit(SIG.SIGKILL) | sigBit(SIG.SIGSTOP));
}

export const sigmask: Resource<SigmaskState> = {
  name: 'sigmask',
  schema: sigmaskSchema,
  dump(ctx) {
    const tid = ctx.remote.tid;
    return { tid, mask: ctx.remote.savedMask };
  },
  restore() {
    // Nothing to inject: see the file comment (the orchestrator calls finalSigmask).
  },
};

/** The mask of a thread no RemoteTask is driving (still seized and stopped). */
export function sigmaskOf(tid: number): SigmaskState {
  return { tid, mask: ptrace.getSigmask(tid) };
}
