/**
 * Seccomp. Saving filters is not implemented yet, and a process under seccomp
 * (strict mode, or a filter that kills on unexpected syscalls) may be killed by the
 * very syscalls ckpt injects. So this module refuses such processes, reading only
 * /proc: the orchestrator runs its dump FIRST, before any injection.
 */
import { z } from 'zod';
import { CkptError } from '../../common/errors.js';
import { readTaskStatus } from '../../proc/index.js';
import type { Resource } from '../types.js';

export interface SeccompState {
  /** Always 0 (disabled) for now. */
  mode: 0;
}

export const seccompSchema: z.ZodType<SeccompState> = z.object({ mode: z.literal(0) });

export const seccomp: Resource<SeccompState> = {
  name: 'seccomp',
  schema: seccompSchema,
  dump(ctx) {
    // Seccomp is per thread: a thread may have installed a filter the others lack.
    for (const tid of ctx.proc.tids.length > 0 ? ctx.proc.tids : [ctx.pid]) {
      const mode = readTaskStatus(ctx.pid, tid).seccomp;
      if (mode === 1) throw new CkptError('UNSUPPORTED', `Cannot dump process ${ctx.pid}: thread ${tid} runs in seccomp strict mode, which forbids the syscalls ckpt injects`);
      if (mode === 2) throw new CkptError('UNSUPPORTED', `Cannot dump process ${ctx.pid}: thread ${tid} has seccomp filters; seccomp filters are not supported yet`);
    }
    return { mode: 0 };
  },
  restore() {
    // Nothing to do: only processes without seccomp are dumped.
  },
};
