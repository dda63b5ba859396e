/**
 * The alternate signal stack of one thread (the one RemoteTask drives). Read with an
 * injected sigaltstack(NULL, &old); there is no ptrace request or /proc file for it.
 *
 * A thread stopped inside a handler running on the alternate stack reports
 * SS_ONSTACK; that flag describes where rsp is, not a setting, so restore drops it.
 * A disabled stack is not restored (a new thread has none).
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { NR } from '../../sys/index.js';
import type { Resource } from '../types.js';
import { callIn, callOut } from './inject.js';

export const SS_ONSTACK = 1;
export const SS_DISABLE = 2;
const STACK_T_SIZE = 24;

/** stack_t: { void *ss_sp; int ss_flags; size_t ss_size; } */
export interface SigaltstackState {
  tid: number;
  sp: bigint;
  /** SS_DISABLE, SS_ONSTACK, SS_AUTODISARM (1 << 31). */
  flags: number;
  size: bigint;
}

export const sigaltstackSchema: z.ZodType<SigaltstackState> = z.object({
  tid: z.number().int().positive(),
  sp: zBig,
  flags: z.number().int(),
  size: zBig,
});

export function encodeStack(s: Pick<SigaltstackState, 'sp' | 'flags' | 'size'>): Buffer {
  const b = Buffer.alloc(STACK_T_SIZE);
  b.writeBigUInt64LE(BigInt.asUintN(64, s.sp), 0);
  b.writeInt32LE(s.flags | 0, 8);
  b.writeBigUInt64LE(BigInt.asUintN(64, s.size), 16);
  return b;
}

export function decodeStack(b: Buffer): Pick<SigaltstackState, 'sp' | 'flags' | 'size'> {
  return { sp: b.readBigUInt64LE(0), flags: b.readInt32LE(8), size: b.readBigUInt64LE(16) };
}

export const sigaltstack: Resource<SigaltstackState> = {
  name: 'sigaltstack',
  schema: sigaltstackSchema,
  dump(ctx) {
    const b = callOut(ctx.remote, { nr: NR.sigaltstack, name: 'sigaltstack', size: STACK_T_SIZE, args: (addr) => [0, addr] });
    return { tid: ctx.remote.tid, ...decodeStack(b) };
  },
  restore(ctx, state) {
    if ((state.flags & SS_DISABLE) !== 0) return;
    const data = encodeStack({ ...state, flags: state.flags & ~SS_ONSTACK });
    callIn(ctx.remote, { nr: NR.sigaltstack, name: 'sigaltstack', data, args: (addr) => [addr, 0] });
  },
};
