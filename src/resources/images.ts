/** The images of one dumped process tree: names, kinds and schemas shared by dump and restore. */
import { z } from 'zod';
import { MemoryState } from './memory/state.js';
import { ThreadCpu } from './thread/state.js';

const Pid = z.number().int().positive().max(4194304);

/** One process of the dumped tree and how it relates to the others. */
export const TreeEntry = z.object({
  pid: Pid,
  /** Parent in the tree (0 for the root, whose parent is outside). */
  ppid: z.number().int().min(0),
  /**
   * 0 when the group or session is led from outside the dump's PID namespace (a
   * process started by a container's init that never called setsid): "outside", as
   * for the root's own group and session.
   */
  pgid: z.number().int().min(0),
  sid: z.number().int().min(0),
  /** A zombie: only its exit status (a wait status) is saved; it has no other images. */
  zombie: z.object({ status: z.number().int() }).optional(),
  /** Stopped (SIGSTOP/SIGTSTP…) at dump time: stopped again after restore. */
  stopped: z.boolean(),
  /**
   * A stopped process's report to its parent in the tree (resources/process/stop-report.ts):
   * collected already (waitpid(WUNTRACED) gave it), or not, with its stop signal. Absent
   * in images before it was saved: the restore then stops the process as it did (a new report).
   */
  stopReport: z.object({ collected: z.boolean(), signal: z.number().int().min(1).max(64).optional() }).optional(),
  /**
   * The signal its parent gets when it exits, when not SIGCHLD (a clone child: 0 for
   * none; waited for with __WCLONE). Not saved for the root (the restorer is its parent).
   */
  exitSignal: z.number().int().min(0).max(64).optional(),
  /** Shares its fd table (CLONE_FILES) or fs info (CLONE_FS) with its parent. */
  sharesFiles: z.boolean(),
  sharesFs: z.boolean(),
});
export type TreeEntry = z.infer<typeof TreeEntry>;

export const TOOL_IMAGE = {
  name: 'process',
  kind: 'process',
  schema: z.object({
    tool: z.literal('ckpt'),
    rootPid: Pid,
    pids: z.array(Pid).min(1).max(100_000),
    /** Parents before children. */
    tree: z.array(TreeEntry).min(1).max(100_000),
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

/**
 * predump.img, in place of process.img in a pre-dump's set (format 1.4): only the private
 * pages of each process (pagemap-PID), for a later dump to be made against. A pre-dump is
 * never restored itself.
 */
export const PREDUMP_IMAGE = {
  name: 'predump',
  kind: 'predump',
  schema: z.object({
    tool: z.literal('ckpt'),
    rootPid: Pid,
    pids: z.array(Pid).min(1).max(100_000),
    kernel: z.string().max(256),
    createdAt: z.string().max(64),
  }),
};
