/**
 * Pending signals: the process-wide (shared) queue and the queue of one thread.
 *
 * Dump reads both queues with PTRACE_PEEKSIGINFO, which leaves them untouched, and
 * keeps each siginfo_t byte for byte (si_code, si_pid, si_value …).
 *
 * Restore re-queues them from inside the target: rt_sigqueueinfo(pid, …) for the
 * shared queue and rt_tgsigqueueinfo(pid, tid, …) for the thread's own. A process
 * may queue a siginfo with any si_code to itself (the kernel refuses forged codes only
 * towards other processes), so kernel-generated signals come back as they were. All
 * signals are blocked while RemoteTask drives the thread, so nothing is delivered
 * before the final mask is set (see sigmask.ts).
 *
 * Order: after sigactions (setting SIG_IGN discards pending signals) and only into a
 * process that does not have them yet: a second rt_signal would be queued twice.
 */
import { z } from 'zod';
import { CkptError } from '../../common/errors.js';
import { NR, ptrace, SIGINFO_SIZE, type Arg, type Siginfo } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Resource } from '../types.js';
import { callIn } from './inject.js';

export interface PendingSignal {
  signo: number;
  code: number;
  /** The whole siginfo_t (128 bytes), base64. */
  info: string;
}

export interface PendingState {
  /** The thread whose private queue `thread` is (its id at dump time). */
  tid: number;
  shared: PendingSignal[];
  thread: PendingSignal[];
}

const pendingSignal = z.object({
  signo: z.number().int().min(1).max(64),
  code: z.number().int(),
  info: z.string().refine((s) => Buffer.from(s, 'base64').length === SIGINFO_SIZE, `expected ${SIGINFO_SIZE} bytes of siginfo_t`),
});

export const pendingSchema: z.ZodType<PendingState> = z.object({
  tid: z.number().int().positive(),
  shared: z.array(pendingSignal),
  thread: z.array(pendingSignal),
});

function toState(si: Siginfo): PendingSignal {
  return { signo: si.signo, code: si.code, info: si.raw.toString('base64') };
}

interface Requeue {
  sig: PendingSignal;
  nr: number;
  name: string;
  args: (addr: bigint) => Arg[];
}

function requeue(remote: RemoteTask, q: Requeue): void {
  const info = Buffer.from(q.sig.info, 'base64');
  if (info.readInt32LE(0) !== q.sig.signo) {
    throw new CkptError('BAD_IMAGE', `Cannot restore pending signal ${q.sig.signo}: its siginfo says signal ${info.readInt32LE(0)}`);
  }
  callIn(remote, { nr: q.nr, name: `${q.name}(${q.sig.signo})`, data: info, args: q.args });
}

export const pending: Resource<PendingState> = {
  name: 'pending',
  schema: pendingSchema,
  dump(ctx) {
    const tid = ctx.remote.tid;
    return {
      tid,
      shared: ptrace.peekSiginfo(tid, { shared: true }).map(toState),
      thread: ptrace.peekSiginfo(tid, { shared: false }).map(toState),
    };
  },
  restore(ctx, state) {
    // The thread that runs the injection is the one whose queue we fill, and it must
    // be the receiver itself for the kernel to accept any si_code.
    const pid = ctx.pid;
    const tid = ctx.remote.tid;
    for (const sig of state.shared) {
      requeue(ctx.remote, { sig, nr: NR.rt_sigqueueinfo, name: 'rt_sigqueueinfo', args: (addr) => [pid, sig.signo, addr] });
    }
    for (const sig of state.thread) {
      requeue(ctx.remote, { sig, nr: NR.rt_tgsigqueueinfo, name: 'rt_tgsigqueueinfo', args: (addr) => [pid, tid, sig.signo, addr] });
    }
  },
};
