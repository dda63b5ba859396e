/**
 * Scheduling and other per-process knobs /proc shows: each thread's policy, priority,
 * nice, scheduler flags, deadline parameters or fair slice, CPU affinity and I/O
 * priority (sched_getattr / sched_getaffinity / ioprio_get, called by ckpt on the thread, nothing injected);
 * the process's oom_score_adj and coredump_filter (/proc files).
 *
 * Restored by ckpt itself on every thread (TIDs are the old ones), in the last phase:
 * a real-time or deadline policy must not apply while the restore still forks children
 * and threads (SCHED_RESET_ON_FORK, deadline tasks cannot fork). The kernel checks
 * ckpt's own privilege (CAP_SYS_NICE, CAP_SYS_RESOURCE for a negative oom_score_adj),
 * so an image never gets more than the restorer could set; a refusal fails the restore
 * naming the thread and the knob.
 *
 * Refused at dump: prctl(PR_SET_MEMORY_MERGE) (ksm_merge_any), which needs
 * CAP_SYS_RESOURCE to set again.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { z } from 'zod';
import { CkptError } from '../../common/errors.js';
import { zBig } from '../../images/index.js';
import { malformed, procPath, readTaskStat } from '../../proc/index.js';
import { readProcText } from '../../proc/procfs.js';
import { ioprioGet, ioprioSet, isErrno, schedGetaffinity, schedGetattr, schedSetaffinity, schedSetattr, type SchedAttr } from '../../sys/index.js';
import type { Resource } from '../types.js';

const SCHED = { NORMAL: 0, FIFO: 1, RR: 2, BATCH: 3, IDLE: 5, DEADLINE: 6 } as const;
/** SCHED_FLAG_RESET_ON_FORK | SCHED_FLAG_RECLAIM | SCHED_FLAG_DL_OVERRUN: what sched_getattr reports. */
const KEPT_FLAGS = 0x7n;
const UTIL_CLAMP = 0x60n;

const ThreadSched = z.object({
  tid: z.number().int().min(1),
  policy: z.number().int().min(0).max(7),
  flags: zBig,
  nice: z.number().int().min(-20).max(19),
  priority: z.number().int().min(0).max(99),
  runtime: zBig,
  deadline: zBig,
  period: zBig,
  utilMin: z.number().int().min(0).max(1024),
  utilMax: z.number().int().min(0).max(1024),
  /** CPU affinity mask, hex bytes as sched_getaffinity returns them. */
  cpus: z.string().regex(/^([0-9a-f]{2}){1,1024}$/),
  /** ioprio_get: class << 13 | level (absent from older images: left as the restore makes it). */
  ioprio: z.number().int().min(0).max(0xffff).optional(),
});
type ThreadSched = z.infer<typeof ThreadSched>;

/** Absent from images of ckpt before it saved these: such an image restores none of them. */
export const schedSchema = z.object({
  threads: z.array(ThreadSched).max(100_000),
  oomScoreAdj: z.number().int().min(-1000).max(1000).optional(),
  /** /proc/PID/coredump_filter (mm flags MMF_DUMP_*). */
  coredumpFilter: z.number().int().min(0).max(0xffffffff).optional(),
}).default({ threads: [] });
export type SchedState = z.infer<typeof schedSchema>;

function readInt(pid: number, file: string, radix: 10 | 16): number {
  const text = readProcText(pid, file).trim();
  const ok = radix === 10 ? /^-?\d+$/.test(text) : /^[0-9a-f]+$/i.test(text);
  if (!ok) throw malformed(procPath(pid, file), `expected a number, got ${JSON.stringify(text)}`);
  return parseInt(text, radix);
}

function refuseKsmMergeAny(pid: number): void {
  if (!existsSync(procPath(pid, 'ksm_stat'))) return;
  if (/^ksm_merge_any: yes$/m.test(readProcText(pid, 'ksm_stat'))) {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: prctl(PR_SET_MEMORY_MERGE) is on (ksm_merge_any), which is not saved`);
  }
}

const fair = (policy: number) => policy === SCHED.NORMAL || policy === SCHED.BATCH || policy === SCHED.IDLE;

function writeKnob(pid: number, knob: { file: string; value: string; why?: string }): void {
  const { file, value, why } = knob;
  try {
    writeFileSync(procPath(pid, file), value);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const err = code === 'EACCES' || code === 'EPERM' ? 'PERMISSION' : 'SYSCALL';
    throw new CkptError(err, `Cannot restore ${file} ${value} of process ${pid}: ${code ?? (e as Error).message}${err === 'PERMISSION' && why ? ` (${why})` : ''}`, { cause: e });
  }
}

function setSched(pid: number, t: ThreadSched): void {
  const now = schedGetattr(t.tid);
  const want: SchedAttr = {
    policy: t.policy, flags: (t.flags & KEPT_FLAGS) | (t.utilMin !== 0 || t.utilMax !== 0 ? UTIL_CLAMP : 0n), nice: t.nice,
    priority: t.priority, runtime: t.runtime, deadline: t.deadline, period: t.period, utilMin: t.utilMin, utilMax: t.utilMax,
  };
  // A fair thread's runtime is its slice: set only a custom one (0 keeps the default).
  if (fair(t.policy) && t.runtime === now.runtime) want.runtime = 0n;
  try {
    // A real-time or deadline policy ignores sched_nice: set the nice value first.
    if (!fair(t.policy)) schedSetattr(t.tid, { ...want, policy: SCHED.NORMAL, flags: 0n, priority: 0, runtime: 0n, deadline: 0n, period: 0n });
    schedSetattr(t.tid, want);
  } catch (e) {
    const denied = isErrno(e, 'EPERM');
    throw new CkptError(denied ? 'PERMISSION' : 'SYSCALL',
      `Cannot restore the scheduling of thread ${t.tid} of process ${pid} (policy ${t.policy}, priority ${t.priority}, nice ${t.nice}): ${(e as Error).message}${denied ? ' (needs CAP_SYS_NICE or RLIMIT_NICE/RLIMIT_RTPRIO)' : ''}`, { cause: e });
  }
}

function setAffinity(pid: number, t: ThreadSched): void {
  const mask = Buffer.from(t.cpus, 'hex');
  try {
    schedSetaffinity(t.tid, mask);
  } catch (e) {
    throw new CkptError('SYSCALL', `Cannot restore the CPU affinity ${t.cpus} of thread ${t.tid} of process ${pid}: ${(e as Error).message}`, { cause: e });
  }
  // The kernel narrows a mask to the CPUs this host (and the restorer's cpuset) allows.
  const got = schedGetaffinity(t.tid);
  const same = (i: number) => (got[i] ?? 0) === (mask[i] ?? 0);
  if (!Array.from({ length: Math.max(got.length, mask.length) }, (_, i) => i).every(same)) {
    throw new CkptError('UNSUPPORTED', `Cannot restore the CPU affinity ${t.cpus} of thread ${t.tid} of process ${pid}: this host or cpuset allows only ${got.toString('hex')}`);
  }
}

function setIoprio(pid: number, t: ThreadSched): void {
  if (t.ioprio === undefined || ioprioGet(t.tid) === t.ioprio) return;
  try {
    ioprioSet(t.tid, t.ioprio);
  } catch (e) {
    const denied = isErrno(e, 'EPERM');
    throw new CkptError(denied ? 'PERMISSION' : 'SYSCALL',
      `Cannot restore the I/O priority ${t.ioprio >> 13}/${t.ioprio & 0x1fff} (class/level) of thread ${t.tid} of process ${pid}: ${(e as Error).message}${denied ? ' (the real-time class needs CAP_SYS_ADMIN)' : ''}`, { cause: e });
  }
}

export const sched: Resource<SchedState> = {
  name: 'sched',
  schema: schedSchema,
  dump(ctx) {
    refuseKsmMergeAny(ctx.pid);
    const threads = ctx.proc.tids.map((tid): ThreadSched => {
      const a = schedGetattr(tid);
      // sched_getattr reports nice only for fair policies; a real-time thread keeps one too.
      const nice = fair(a.policy) ? a.nice : readTaskStat(ctx.pid, tid).nice;
      return { tid, ...a, nice, flags: a.flags & KEPT_FLAGS, cpus: schedGetaffinity(tid).toString('hex'), ioprio: ioprioGet(tid) };
    });
    return {
      threads,
      oomScoreAdj: readInt(ctx.pid, 'oom_score_adj', 10),
      coredumpFilter: readInt(ctx.pid, 'coredump_filter', 16),
    };
  },
  restore(ctx, s) {
    const pid = ctx.pid;
    // Thread ids come from the image: act only on threads of this process.
    for (const t of s.threads) {
      if (!existsSync(procPath(pid, `task/${t.tid}`))) throw new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: its scheduling image names thread ${t.tid}, which it does not have`);
    }
    if (s.coredumpFilter !== undefined) writeKnob(pid, { file: 'coredump_filter', value: `0x${s.coredumpFilter.toString(16)}` });
    if (s.oomScoreAdj !== undefined) {
      writeKnob(pid, { file: 'oom_score_adj', value: String(s.oomScoreAdj), why: 'lowering it below the restorer\'s needs CAP_SYS_RESOURCE' });
    }
    for (const t of s.threads) {
      setAffinity(pid, t);
      setSched(pid, t);
      setIoprio(pid, t);
    }
  },
};
