/** The images of one dumped process tree: names, kinds and schemas shared by dump and restore. */
import { z } from 'zod';
import { MemoryState } from './memory/state.js';
import { ThreadCpu } from './thread/state.js';

export const TOOL_IMAGE = {
  name: 'process',
  kind: 'process',
  schema: z.object({
    tool: z.literal('ckpt'),
    rootPid: z.number().int().positive(),
    pids: z.array(z.number().int().positive()).min(1).max(100_000),
    kernel: z.string().max(256),
    createdAt: z.string().max(64),
  }),
};

export const CoreImage = z.object({
  pid: z.number().int().positive(),
  threads: z.array(ThreadCpu).min(1).max(100_000),
  /** State of each resource module, by module name; each is validated by its module's schema. */
  resources: z.record(z.string(), z.unknown()),
});
export type CoreImage = z.infer<typeof CoreImage>;

export const coreImage = (pid: number) => ({ name: `core-${pid}`, kind: 'core', schema: CoreImage });
export const mmImage = (pid: number) => ({ name: `mm-${pid}`, kind: 'mm', schema: MemoryState });
