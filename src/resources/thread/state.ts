/** Per-thread state: general registers, the full xsave area (FPU/SSE/AVX/AVX-512), name, and per-thread resources. */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { REG_NAMES, type Regs } from '../../sys/index.js';

export const RegsSchema = z.object(Object.fromEntries(REG_NAMES.map((n) => [n, zBig])) as Record<(typeof REG_NAMES)[number], typeof zBig>);

export const ThreadCpu = z.object({
  tid: z.number().int().positive(),
  regs: RegsSchema,
  /** NT_X86_XSTATE as the kernel gave it, base64. */
  xstate: z.string().max(65536),
  /** The thread's name (/proc/PID/task/TID/comm). */
  comm: z.string().max(64).optional(),
  /** prctl timer slack and parent-death signal of this thread (the leader's are in misc). */
  timerSlackNs: zBig.optional(),
  pdeathSig: z.number().int().min(0).max(64).optional(),
  /** personality(2) of this thread, when it differs from the leader's (it is per task). */
  personality: z.number().int().min(0).max(0xffffffff).optional(),
  /** State of per-thread resource modules (not for the leader, whose state is the process's). */
  resources: z.record(z.string(), z.unknown()).optional(),
});
export type ThreadCpu = z.infer<typeof ThreadCpu>;

export type { Regs };
