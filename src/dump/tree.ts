/**
 * Seizing a whole process tree. Every process found under the root is seized (all its
 * threads); children are re-scanned until a pass finds nothing new: a process can only
 * fork while it runs, so once every known process is stopped the tree cannot change.
 * Zombies cannot be seized; they are recorded with their exit status.
 */
import { CkptError, isCkptError } from '../common/errors.js';
import { kcmp, kill, SIG } from '../sys/index.js';
import { foreignNamespaces, listTasks, readChildren, readStat, type ProcStat } from '../proc/index.js';
import { checkInterrupted, nameOf, seizeProcess, killSeized, type SeizedProcess } from '../infect/index.js';
import type { TreeEntry } from '../resources/images.js';

export interface SeizedTree {
  root: number;
  /** Parents before children. */
  entries: TreeEntry[];
  procs: Map<number, SeizedProcess>;
}

function shares(type: 'FILES' | 'FS' | 'VM', a: number, b: number): boolean {
  return kcmp({ type, pid1: a, pid2: b }) === 0;
}

export function releaseTree(tree: Pick<SeizedTree, 'procs'>): void {
  for (const p of [...tree.procs.values()].reverse()) {
    try {
      p.release();
    } catch {
      // keep releasing the others
    }
  }
}

export function killTree(tree: Pick<SeizedTree, 'procs'>, opts: { sent?: () => void } = {}): void {
  // Children first: a killed parent would hand its children to init before we kill them.
  const procs = [...tree.procs.values()].reverse();
  for (const p of procs) for (const step of p.atKill) step();
  // Every SIGKILL before any wait: a ckpt killed now cannot leave part of the tree running.
  for (const p of procs) kill(p.pid, SIG.SIGKILL);
  // A thread in a ptrace stop with SIGKILL queued never runs user code again; its exit
  // (freeing its memory: tens of ms for a big one) is still to come.
  opts.sent?.();
  for (const p of procs) killSeized(p);
}

/**
 * A process group or session is recreated from its leader's pid (setpgid/setsid in
 * the process with that pid). One whose leader is not in the dump (it exited, or lives
 * outside) could only be joined to the parent's, a silent change: refused. The root's
 * own group and session are outside by nature (the shell's job); restore puts it
 * into the restorer's (or the terminal's with --shell-job).
 */
function refuseLostGroups(entries: TreeEntry[]): void {
  const root = entries[0]!;
  const pids = new Set(entries.map((e) => e.pid));
  for (const e of entries) {
    const what = e.zombie ? 'zombie' : 'process';
    if (e.pgid !== root.pgid && !pids.has(e.pgid)) {
      throw new CkptError('UNSUPPORTED', `Cannot dump ${what} ${e.pid}: its process group ${e.pgid} has no leader in the dump, so it cannot be made again`);
    }
    if (e.sid !== root.sid && !pids.has(e.sid)) {
      throw new CkptError('UNSUPPORTED', `Cannot dump ${what} ${e.pid}: its session ${e.sid} has no leader in the dump, so it cannot be made again`);
    }
  }
}

/** See proc/namespaces.ts: no namespace is saved, so a process in others than ours is refused. */
function refuseForeignNamespaces(entries: TreeEntry[]): void {
  for (const e of entries) {
    if (e.zombie) continue;
    const ns = foreignNamespaces(e.pid)[0];
    if (ns) {
      throw new CkptError(
        'UNSUPPORTED',
        `Cannot dump process ${e.pid}: it is in another ${ns.what} namespace than ckpt (${ns.theirs}, ckpt's ${ns.ours}); namespaces are not saved, and a restore would put it in the restorer's`,
      );
    }
  }
}

/** The stat of PID if it is a zombie now (undefined if it is gone or alive). */
function zombieStat(pid: number): ProcStat | undefined {
  try {
    const stat = readStat(pid);
    return stat.state === 'Z' ? stat : undefined;
  } catch {
    return undefined;
  }
}

/**
 * ckpt cannot dump a tree it runs in: it would seize itself (the kernel refuses) or
 * stop the process that waits for it. Refuse before anything is seized.
 */
function checkOutsideTree(root: number): void {
  for (let pid = process.pid, depth = 0; pid > 1 && depth < 4096; depth++) {
    if (pid === root) {
      const self = pid === process.pid ? 'it is ckpt itself' : `ckpt (process ${process.pid}) runs inside its tree, under ${nameOf(pid)}`;
      throw new CkptError('USAGE', `Cannot dump process ${root}: ${self}`);
    }
    try {
      pid = readStat(pid).ppid;
    } catch {
      return;
    }
  }
}

/**
 * A leader whose thread has exited (pthread_exit in main) while other threads run shows
 * as a zombie ('Z') too, but the process lives on: it is not saved (its memory and
 * threads are reached through the leader here), and a dump that took it for a zombie
 * would save nothing of it and leave it running.
 */
function refuseDeadLeader(pid: number): void {
  let tasks: number[];
  try {
    tasks = listTasks(pid);
  } catch {
    return; // gone: a zombie indeed
  }
  if (tasks.length > 1) {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: its main thread has exited (pthread_exit) while ${tasks.length - 1} other thread(s) run on, which is not supported`);
  }
}

export function seizeTree(root: number, opts: { timeoutMs?: number; onWait?: () => void } = {}): SeizedTree {
  checkOutsideTree(root);
  const procs = new Map<number, SeizedProcess>();
  const entries: TreeEntry[] = [];
  const known = new Set<number>();
  const add = (pid: number, ppid: number): void => {
    checkInterrupted();
    known.add(pid);
    const stat = readStat(pid);
    const base: TreeEntry = { pid, ppid, pgid: stat.pgrp, sid: stat.session, sharesFiles: false, sharesFs: false, stopped: false };
    if (ppid !== 0 && stat.exitSignal !== SIG.SIGCHLD) base.exitSignal = stat.exitSignal;
    const zombie = (s: ProcStat) => void entries.push({ ...base, zombie: { status: s.exitCode } }); // stat's exit code is in waitpid(2) form
    if (stat.state === 'Z') {
      refuseDeadLeader(pid);
      return zombie(stat);
    }
    let proc: SeizedProcess;
    try {
      proc = seizeProcess(pid, { timeoutMs: opts.timeoutMs, onWait: opts.onWait });
    } catch (e) {
      // A child that exits while we seize it stays a zombie of its stopped parent: part of the tree.
      const now = ppid !== 0 && isCkptError(e, 'NO_PROCESS') ? zombieStat(pid) : undefined;
      if (!now) throw e;
      return zombie(now);
    }
    procs.set(pid, proc);
    const stopped = proc.tasks.get(pid)?.groupStopped ?? false;
    if (ppid !== 0 && shares('VM', pid, ppid)) {
      throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: it shares memory with its parent ${ppid} (vfork or CLONE_VM), which is not supported`);
    }
    entries.push({
      ...base,
      stopped,
      sharesFiles: ppid !== 0 && shares('FILES', pid, ppid),
      sharesFs: ppid !== 0 && shares('FS', pid, ppid),
    });
  };
  try {
    add(root, 0);
    for (let changed = true; changed; ) {
      changed = false;
      for (const e of [...entries]) {
        if (e.zombie) continue;
        for (const child of readChildren(e.pid)) {
          if (known.has(child)) continue;
          try {
            add(child, e.pid);
            changed = true;
          } catch (err) {
            // A child that exits while we look is not part of the tree any more.
            if (!isCkptError(err, 'NO_PROCESS')) throw err;
          }
        }
      }
    }
    refuseLostGroups(entries);
    refuseForeignNamespaces(entries);
    return { root, entries, procs };
  } catch (e) {
    releaseTree({ procs });
    throw e;
  }
}
