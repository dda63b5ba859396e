/** Per-thread CPU state: general registers and the full xsave area (FPU/SSE/AVX/AVX-512). */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { REG_NAMES, type Regs } from '../../sys/index.js';

export const RegsSchema = z.object(Object.fromEntries(REG_NAMES.map((n) => [n, zBig])) as Record<(typeof REG_NAMES)[number], typeof zBig>);

export const ThreadCpu = z.object({
  tid: z.number().int().positive(),
  regs: RegsSchema,
  /** NT_X86_XSTATE as the kernel gave it, base64. */
  xstate: z.string().max(65536),
});
export type ThreadCpu = z.infer<typeof ThreadCpu>;

export type { Regs };
