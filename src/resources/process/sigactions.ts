/**
 * Signal dispositions (process-wide: they live in the shared sighand_struct).
 *
 * Dump asks the kernel only where the answer is not already known from
 * /proc/PID/status: caught signals (SigCgt) are read with an injected
 * rt_sigaction(sig, NULL, &old); ignored ones (SigIgn) are saved as SIG_IGN without a
 * syscall, since flags and mask of an ignored signal never take effect. SIGCHLD is
 * always read: SIG_DFL with SA_NOCLDWAIT/SA_NOCLDSTOP changes how children are reaped
 * and shows in neither set. Dispositions inherited from a shell (SIGINT/SIGQUIT
 * ignored under `cmd &`) are real state and are saved like any other.
 *
 * Restore sets every saved disposition and resets to SIG_DFL whatever else the target
 * has non-default. Setting SIG_IGN (or SIG_DFL for a default-ignored signal) discards
 * pending instances of that signal, so pending signals are restored after this.
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { readStatus } from '../../proc/index.js';
import { NR, SIG } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Resource } from '../types.js';
import { callIn, callsOut, sigBit, type StructOut } from './inject.js';

export const SIG_DFL = 0n;
export const SIG_IGN = 1n;
const KSIGACTION_SIZE = 32;
const SIGSET_SIZE = 8;

/** struct kernel_sigaction as x86_64 passes it to rt_sigaction. */
export interface Sigaction {
  signo: number;
  handler: bigint;
  flags: bigint;
  restorer: bigint;
  /** Signals blocked while the handler runs. */
  mask: bigint;
}

export interface SigactionsState {
  /** Every signal whose disposition is not the default; the others are SIG_DFL. */
  actions: Sigaction[];
}

const sigaction = z.object({
  signo: z.number().int().min(1).max(64),
  handler: zBig,
  flags: zBig,
  restorer: zBig,
  mask: zBig,
});

export const sigactionsSchema: z.ZodType<SigactionsState> = z.object({ actions: z.array(sigaction) });

export function encodeSigaction(a: Sigaction): Buffer {
  const b = Buffer.alloc(KSIGACTION_SIZE);
  b.writeBigUInt64LE(BigInt.asUintN(64, a.handler), 0);
  b.writeBigUInt64LE(BigInt.asUintN(64, a.flags), 8);
  b.writeBigUInt64LE(BigInt.asUintN(64, a.restorer), 16);
  b.writeBigUInt64LE(BigInt.asUintN(64, a.mask), 24);
  return b;
}

export function decodeSigaction(signo: number, b: Buffer): Sigaction {
  return {
    signo,
    handler: b.readBigUInt64LE(0),
    flags: b.readBigUInt64LE(8),
    restorer: b.readBigUInt64LE(16),
    mask: b.readBigUInt64LE(24),
  };
}

/** Signals whose disposition can be saved: all but SIGKILL and SIGSTOP. */
export function settableSignals(): number[] {
  const out: number[] = [];
  for (let s = 1; s <= 64; s++) if (s !== SIG.SIGKILL && s !== SIG.SIGSTOP) out.push(s);
  return out;
}

/** The read of one signal's action (for callsOut). */
function query(signo: number): StructOut {
  return { nr: NR.rt_sigaction, name: `rt_sigaction(${signo})`, size: KSIGACTION_SIZE, args: (addr) => [signo, 0, addr, SIGSET_SIZE] };
}

function isDefault(a: Sigaction): boolean {
  return a.handler === SIG_DFL && a.flags === 0n;
}

function set(remote: RemoteTask, a: Sigaction): void {
  callIn(remote, {
    nr: NR.rt_sigaction, name: `rt_sigaction(${a.signo})`, data: encodeSigaction(a),
    args: (addr) => [a.signo, addr, 0, SIGSET_SIZE],
  });
}

export const sigactions: Resource<SigactionsState> = {
  name: 'sigactions',
  schema: sigactionsSchema,
  dump(ctx) {
    const st = readStatus(ctx.pid);
    const caught = settableSignals().filter((signo) => (st.sigCgt & sigBit(signo)) !== 0n || signo === SIG.SIGCHLD);
    // Every caught signal's action in one stop (callsOut).
    const got = new Map(callsOut(ctx.remote, caught.map(query)).map((g, i) => [caught[i]!, decodeSigaction(caught[i]!, g.out)]));
    const actions: Sigaction[] = [];
    for (const signo of settableSignals()) {
      const a = got.get(signo);
      if (a) {
        if (!isDefault(a)) actions.push(a);
      } else if ((st.sigIgn & sigBit(signo)) !== 0n) {
        actions.push({ signo, handler: SIG_IGN, flags: 0n, restorer: 0n, mask: 0n });
      }
    }
    return { actions };
  },
  restore(ctx, state) {
    const saved = new Set(state.actions.map((a) => a.signo));
    const st = readStatus(ctx.pid);
    const nonDefault = st.sigCgt | st.sigIgn;
    for (const signo of settableSignals()) {
      if (saved.has(signo)) continue;
      // SIGCHLD may carry SA_NOCLDWAIT with SIG_DFL, which neither status set shows.
      if ((nonDefault & sigBit(signo)) === 0n && signo !== SIG.SIGCHLD) continue;
      set(ctx.remote, { signo, handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n });
    }
    for (const a of state.actions) set(ctx.remote, a);
  },
};
