/**
 * Threads other than the leader. Their per-thread state (signal mask, own pending
 * signals, sigaltstack, clear_child_tid and robust list, rseq, memory policy) is dumped and restored
 * by the same resource modules as the leader's, driven through a RemoteTask on the
 * thread itself. The leader's copy of those modules is the process's.
 */
import { readFileSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { CLONE, encodeCloneArgs, isErrno, NR, PTRACE_EVENT } from '../../sys/index.js';
import { RemoteTask, waitStop } from '../../infect/index.js';
import { RESOURCES } from '../registry.js';
import type { PendingState } from '../process/pending.js';
import { finalSigmask, type SigmaskState } from '../process/sigmask.js';
import { readThreadKnobs, setPersonality, setTimerSlack } from '../process/misc.js';
import type { DumpContext, RestoreContext } from '../types.js';
import { dumpCpu } from './cpu.js';
import type { ThreadCpu } from './state.js';

const PER_THREAD = new Set(['sigaltstack', 'futex', 'rseq', 'mempolicy', 'pending', 'sigmask']);
const perThread = () => RESOURCES.filter((r) => PER_THREAD.has(r.module.name)).map((r) => r.module);

function threadComm(pid: number, tid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').replace(/\n$/, '');
  } catch {
    return undefined;
  }
}

/** Dumps a non-leader thread; the process is seized and every thread stopped. */
export function dumpThread(ctx: DumpContext, tid: number): ThreadCpu {
  const remote = new RemoteTask(tid, { site: ctx.remote.site, recoverable: ctx.remote.recoverable && (ctx.remote.sigreturnGadget ?? true) });
  remote.shareScratch(ctx.remote);
  // The thread gets its registers back when the process is released (a leave-running
  // or failed dump); a dump that kills the process skips that round trip per thread.
  ctx.proc.undo.push(`restore registers of thread ${tid}`, () => remote.finish());
  return readThread({ ...ctx, remote });
}

/**
 * A non-leader thread's state, read through `tctx.remote`, a RemoteTask on the thread
 * itself (restore --check reads it again, with its reads gathered).
 */
export function readThread(tctx: DumpContext): ThreadCpu {
  const remote = tctx.remote;
  const tid = remote.tid;
  const resources: Record<string, unknown> = {};
  for (const m of perThread()) resources[m.name] = m.dump(tctx);
  // The shared queue is the process's: saved once, with the leader.
  const p = resources['pending'] as PendingState | undefined;
  if (p) p.shared = [];
  // Registers as they were before we borrowed the thread; injection leaves the xsave area alone.
  return { ...dumpCpu(tid), regs: remote.savedRegs, comm: threadComm(tctx.pid, tid), ...readThreadKnobs(remote, { pid: tctx.pid, checking: tctx.checking }), resources };
}

export interface BuiltThread {
  remote: RemoteTask;
  thread: ThreadCpu;
  mask: bigint;
}

/** clone3 calls per batch: each needs 192 bytes of arguments in the scratch area. */
const CLONES_PER_BATCH = 50;

/**
 * Creates the threads with their old TIDs in the process being rebuilt: the leader
 * runs the clone3 calls as one batch (a new thread, traced from birth, waits in its
 * first stop and never runs the batch code), then each thread gets its own state.
 */
export function restoreThreads(ctx: RestoreContext, threads: ThreadCpu[]): BuiltThread[] {
  const r = ctx.remote;
  const flags = CLONE.VM | CLONE.FS | CLONE.FILES | CLONE.SIGHAND | CLONE.THREAD | CLONE.SYSVSEM;
  for (let i = 0; i < threads.length; i += CLONES_PER_BATCH) {
    const group = threads.slice(i, i + CLONES_PER_BATCH);
    try {
      r.batch(() => {
        for (const t of group) {
          const setTid = Buffer.alloc(4);
          setTid.writeInt32LE(t.tid);
          const args = encodeCloneArgs({ flags, setTid: r.put(setTid), setTidSize: 1n });
          r.call(NR.clone3, [r.put(args), args.length], `clone3(TID ${t.tid})`);
        }
      });
    } catch (e) {
      const tid = /TID (\d+)/.exec((e as Error).message)?.[1];
      if (isErrno(e, 'EEXIST')) throw new CkptError('PID_TAKEN', `Cannot restore thread ${tid} of process ${ctx.pid}: TID ${tid} is in use`);
      throw e;
    }
  }
  return threads.map((t) => setUpThread(ctx, t));
}

function setUpThread(ctx: RestoreContext, thread: ThreadCpu): BuiltThread {
  const r = ctx.remote;
  const st = waitStop(thread.tid);
  if (st.event !== PTRACE_EVENT.STOP) throw new CkptError('INTERNAL', `Cannot restore thread ${thread.tid}: unexpected first stop (event ${st.event})`);
  const remote = new RemoteTask(thread.tid, { site: r.site });
  remote.shareScratch(r);
  const tctx: RestoreContext = { ...ctx, remote };
  const saved = thread.resources ?? {};
  // None of these calls needs a result: run them with one stop (RemoteTask.batch).
  remote.batch(() => {
    for (const m of perThread()) {
      if (!(m.name in saved)) continue;
      const parsed = m.schema.safeParse(saved[m.name]);
      if (!parsed.success) throw new CkptError('BAD_IMAGE', `Cannot restore thread ${thread.tid}: its ${m.name} state is invalid`);
      m.restore(tctx, parsed.data);
    }
    if (thread.timerSlackNs !== undefined) setTimerSlack(remote, thread.timerSlackNs);
    if (thread.personality !== undefined) setPersonality(remote, thread.personality);
    if (thread.comm !== undefined) {
      remote.call(NR.prctl, [15 /* PR_SET_NAME */, remote.put(Buffer.from(`${thread.comm.slice(0, 15)}\0`), 0)], 'prctl(PR_SET_NAME)');
    }
  });
  const mask = saved['sigmask'] ? finalSigmask(saved['sigmask'] as SigmaskState) : 0n;
  return { remote, thread, mask };
}
