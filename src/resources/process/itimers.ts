/**
 * Interval timers (setitimer): ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF, process-wide.
 * Read with injected getitimer, which gives the time left; restore arms them with that
 * time left, so a real timer does not count the time the process spent checkpointed
 * (as in CRIU). Restore them late, just before the process resumes, so the restore
 * itself eats as little of ITIMER_REAL as possible; the other two only count the
 * process's own CPU time.
 *
 * An ITIMER_REAL that came due while the process could not take SIGALRM (frozen by the
 * dump, or SIGALRM blocked or ignored) shows time left 0 with its interval: the kernel
 * re-arms it only when the signal is dequeued. setitimer with a value of 0 would
 * disarm it and clear the interval, so it is set to come due again at once (1 us):
 * its SIGALRM merges with the saved pending one (a standard signal queues once), and
 * it is in the same state, waiting for that signal to be taken.
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { NR } from '../../sys/index.js';
import type { Resource } from '../types.js';
import { callIn, callsOut } from './inject.js';

export const ITIMER = { real: 0, virtual: 1, prof: 2 } as const;
type Which = keyof typeof ITIMER;
const ITIMERVAL_SIZE = 32;
const US = 1_000_000n;

export interface Itimer {
  /** Reload value in microseconds (0 = one-shot). */
  intervalUs: bigint;
  /** Time left in microseconds (0 = disarmed). */
  valueUs: bigint;
}

export type ItimersState = Record<Which, Itimer>;

const itimer = z.object({ intervalUs: zBig, valueUs: zBig });
export const itimersSchema: z.ZodType<ItimersState> = z.object({ real: itimer, virtual: itimer, prof: itimer });

/** struct itimerval { timeval it_interval; timeval it_value; } */
export function decodeItimerval(b: Buffer): Itimer {
  return {
    intervalUs: b.readBigInt64LE(0) * US + b.readBigInt64LE(8),
    valueUs: b.readBigInt64LE(16) * US + b.readBigInt64LE(24),
  };
}

export function encodeItimerval(t: Itimer): Buffer {
  const b = Buffer.alloc(ITIMERVAL_SIZE);
  b.writeBigInt64LE(t.intervalUs / US, 0);
  b.writeBigInt64LE(t.intervalUs % US, 8);
  b.writeBigInt64LE(t.valueUs / US, 16);
  b.writeBigInt64LE(t.valueUs % US, 24);
  return b;
}

export const itimers: Resource<ItimersState> = {
  name: 'itimers',
  schema: itimersSchema,
  dump(ctx) {
    const whiches = ['real', 'virtual', 'prof'] as const;
    const got = callsOut(ctx.remote, whiches.map((which) => ({ nr: NR.getitimer, name: `getitimer(${which})`, size: ITIMERVAL_SIZE, args: (addr: bigint) => [ITIMER[which], addr] })));
    const [real, virtual, prof] = got.map((g) => decodeItimerval(g.out));
    return { real: real!, virtual: virtual!, prof: prof! };
  },
  restore(ctx, state) {
    for (const which of Object.keys(ITIMER) as Which[]) {
      const t = state[which];
      const due = which === 'real' && t.valueUs === 0n && t.intervalUs !== 0n;
      // Disarmed timers are set too: it costs one syscall and leaves no timer of the blank process behind.
      callIn(ctx.remote, {
        nr: NR.setitimer, name: `setitimer(${which})`, data: encodeItimerval(due ? { ...t, valueUs: 1n } : t),
        args: (addr) => [ITIMER[which], addr, 0],
      });
    }
  },
};
