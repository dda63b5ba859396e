/**
 * Before the freeze of a background dump (resources/memory/background.ts): the tree is
 * stopped for a moment to make a userfaultfd in each process and register its private
 * areas, then, running again, write-protected a slice at a time. The freeze that follows
 * protects only what was written since, whatever the size of the memory.
 */
import { checkInterrupted, findSyscallSite, RemoteTask } from '../infect/index.js';
import type { BackgroundCopy } from '../resources/memory/background.js';
import { restartInterruptedWait } from '../resources/thread/cpu.js';
import { releaseTree, seizeTree } from './tree.js';

export function armBackground(pid: number, args: { background: BackgroundCopy; timeoutMs?: number }): void {
  const tree = seizeTree(pid, { timeoutMs: args.timeoutMs });
  try {
    for (const e of tree.entries) {
      if (e.zombie) continue;
      checkInterrupted();
      const proc = tree.procs.get(e.pid)!;
      // PTRACE_INTERRUPT woke some waits with EINTR: they must restart when the tree runs on.
      for (const tid of proc.tids) restartInterruptedWait(tid);
      // A stopped process does not write: it is registered and protected at the freeze.
      if (proc.tasks.get(e.pid)?.groupStopped) continue;
      const remote = new RemoteTask(e.pid, { site: findSyscallSite(e.pid), recoverable: true });
      proc.undo.push(`restore registers of ${e.pid}`, () => remote.finish());
      args.background.arm(e.pid, remote);
      remote.finish();
    }
  } finally {
    releaseTree(tree);
  }
  // Before anything is protected: a writer meets no protection while smaps is read.
  args.background.readFlags();
  args.background.protectArmed();
}
