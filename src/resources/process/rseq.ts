/**
 * Restartable sequences: the struct rseq a thread registered (glibc ≥ 2.35 registers
 * one for every thread). Read with PTRACE_GET_RSEQ_CONFIGURATION (Linux 5.13+).
 *
 * Restore registers it again with an injected rseq(ptr, len, 0, sig). The kernel
 * writes the current CPU into the area right away and on every return to user space,
 * so this must run after memory is restored (an unmapped area kills the thread with
 * SIGSEGV, a wrong one corrupts memory). A different registration the target still
 * has (a blank process started by glibc) is removed first; an identical one is kept.
 */
import { CkptError } from '../../common/errors.js';
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { isErrno, NR, ptrace } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Resource } from '../types.js';

type RseqConfig = ptrace.RseqConfig;

const RSEQ_FLAG_UNREGISTER = 1;

export interface RseqState {
  tid: number;
  /** null: no rseq area registered. */
  rseq: { abiPointer: bigint; abiSize: number; signature: number } | null;
}

export const rseqSchema: z.ZodType<RseqState> = z.object({
  tid: z.number().int().positive(),
  rseq: z.object({ abiPointer: zBig, abiSize: z.number().int().min(0), signature: z.number().int().min(0).max(0xffffffff) }).nullable(),
});

/** The registration of `tid`, null if none; undefined if this kernel has no way to tell. */
function registration(tid: number): RseqConfig | null | undefined {
  try {
    const c = ptrace.getRseqConfiguration(tid);
    return c.abiPointer === 0n ? null : c;
  } catch (e) {
    if (isErrno(e, 'EIO') || isErrno(e, 'EINVAL')) return undefined; // request unknown before 5.13
    throw e;
  }
}

function unregister(remote: RemoteTask, c: RseqConfig): void {
  remote.call(NR.rseq, [c.abiPointer, c.abiSize, RSEQ_FLAG_UNREGISTER, c.signature], 'rseq(unregister)');
}

export const rseq: Resource<RseqState> = {
  name: 'rseq',
  schema: rseqSchema,
  dump(ctx) {
    const tid = ctx.remote.tid;
    const c = registration(tid);
    if (c === undefined) {
      throw new CkptError('UNSUPPORTED', `Cannot dump thread ${tid} of process ${ctx.pid}: this kernel lacks PTRACE_GET_RSEQ_CONFIGURATION, so its rseq registration cannot be read`);
    }
    return { tid, rseq: c ? { abiPointer: c.abiPointer, abiSize: c.abiSize, signature: c.signature } : null };
  },
  restore(ctx, s) {
    const r = ctx.remote;
    const cur = registration(r.tid);
    const want = s.rseq;
    const same = cur && want && cur.abiPointer === want.abiPointer && cur.abiSize === want.abiSize && cur.signature === want.signature;
    if (same) return;
    if (cur) unregister(r, cur);
    if (want) r.call(NR.rseq, [want.abiPointer, want.abiSize, 0, want.signature], 'rseq');
  },
};
