/**
 * Processes that were stopped (SIGSTOP, SIGTSTP…) at dump, with the report their parent
 * in the tree had or had not collected (resources/process/stop-report.ts). Each is stopped
 * again here, before the tree is let go and while its parent is still held: the parent
 * then collects the new report if it had collected the old one, and loses the SIGCHLD
 * the stop sent unless one was pending at dump. Before, the process was stopped after
 * the tree was let go: its parent got a second report (and SIGCHLD), with SIGSTOP
 * whatever signal had stopped it.
 *
 * The stop is made under ptrace: the final registers are loaded, every signal but the
 * stop signal is blocked (so that no pending signal runs a handler first), SIGSTOP is
 * sent; at its delivery stop ckpt hands the thread the saved stop signal instead (when
 * the process takes it by default, and its group is not orphaned: the kernel would drop
 * it), the threads enter the group stop, which notifies the parent, and get their masks
 * back. Detaching later leaves them stopped, without another report.
 */
import { CkptError } from '../common/errors.js';
import { waitStop, type RemoteTask } from '../infect/index.js';
import type { TreeEntry } from '../resources/images.js';
import { collectStopReport } from '../resources/process/stop-report.js';
import type { PendingState, SigactionsState } from '../resources/process/index.js';
import { kill, ptrace, PTRACE_EVENT, SIG } from '../sys/index.js';
import { dropExitSignal } from './create.js';
import { loadRegisters, type BuiltProcess } from './process.js';

const ALL_SIGNALS = 0xffffffffffffffffn;
const bit = (sig: number) => 1n << BigInt(sig - 1);

/** Whether some member of `pgid` has a parent in the tree in another group of the same session. */
function groupHasOutsideParent(entries: readonly TreeEntry[], pgid: number): boolean {
  const byPid = new Map(entries.map((e) => [e.pid, e]));
  return entries.some((e) => {
    const parent = byPid.get(e.ppid);
    return e.pgid === pgid && !e.zombie && parent !== undefined && parent.pgid !== pgid && parent.sid === e.sid;
  });
}

/** Stops process `b` (every thread) with `signal` while traced; returns once the group stop is complete. */
function stopTraced(b: BuiltProcess, signal: number): void {
  const tids = [b.img.pid, ...b.threads.map((t) => t.thread.tid)];
  const masks = tids.map((t) => ptrace.getSigmask(t));
  for (const t of tids) ptrace.setSigmask(t, ALL_SIGNALS & ~bit(signal));
  kill(b.img.pid, SIG.SIGSTOP);
  for (const t of tids) ptrace.cont(t, 0);
  for (const t of tids) {
    for (;;) {
      const st = waitStop(t, { timeoutMs: 5000 });
      if (st.event === PTRACE_EVENT.STOP) break; // its part of the group stop
      // The SIGSTOP's delivery stop: the saved signal goes on in its place.
      if (st.event === 0 && st.signal === SIG.SIGSTOP) ptrace.cont(t, signal);
      else throw new CkptError('INTERNAL', `Cannot stop thread ${t} of process ${b.img.pid} again: unexpected stop (signal ${st.signal}, event ${st.event})`);
    }
  }
  tids.forEach((t, i) => ptrace.setSigmask(t, masks[i]!));
}

/**
 * Stops again each stopped process whose parent is in the tree and whose report was
 * saved, with its final registers loaded (loadRegisters); returns their pids, for which
 * the caller neither loads the registers again nor sends SIGSTOP after letting them go.
 */
export function stopAgain(args: { built: readonly BuiltProcess[]; entries: readonly TreeEntry[]; remotes: ReadonlyMap<number, RemoteTask> }): Set<number> {
  const done = new Set<number>();
  const byPid = new Map(args.built.map((b) => [b.img.pid, b]));
  // Children first: a stopped process's own parent must still be held to collect its report.
  for (const e of [...args.entries].reverse()) {
    const b = byPid.get(e.pid);
    const parent = args.remotes.get(e.ppid);
    const parentImg = byPid.get(e.ppid)?.img;
    if (!e.stopped || !e.stopReport || !b || !parent || !parentImg || done.has(e.ppid)) continue;
    const stateOf = (img: typeof b.img, name: string) => img.resources.find((r) => r.module.name === name)?.state;
    const saved = e.stopReport.signal ?? SIG.SIGSTOP;
    const caught = (stateOf(b.img, 'sigactions') as SigactionsState | undefined)?.actions.some((a) => a.signo === saved);
    const signal = saved === SIG.SIGSTOP || caught || !groupHasOutsideParent(args.entries, e.pgid) ? SIG.SIGSTOP : saved;
    loadRegisters(b);
    stopTraced(b, signal);
    done.add(e.pid);
    if (e.stopReport.collected) collectStopReport(parent, e.pid);
    const pending = stateOf(parentImg, 'pending') as PendingState | undefined;
    dropExitSignal(parent, { signal: SIG.SIGCHLD, wasPending: pending?.shared.some((s) => s.signo === SIG.SIGCHLD) ?? false });
  }
  return done;
}
