/**
 * Creating the processes of a tree with their old PIDs. The root is cloned out of the
 * blank process with CLONE_PARENT, so it becomes our child; every other process is
 * cloned out of its parent, right after the parent was created and before anything in
 * it is rebuilt (it still runs the blank's code). Sessions must exist before children
 * are created (a session is inherited at fork, never joined), so a session leader
 * calls setsid() at once; process groups are joined later, once all exist.
 */
import { CkptError } from '../common/errors.js';
import { CLONE, encodeCloneArgs, isErrno, kill, NR, ptrace, PTRACE_EVENT, SIG, wait4, WAIT } from '../sys/index.js';
import { listTasks } from '../proc/index.js';
import { RemoteTask, TaskGoneError, waitStop, type Undo } from '../infect/index.js';
import type { TreeEntry } from '../resources/images.js';
import { armParentDeathKill } from '../resources/process/index.js';
import { encodeSigaction, SIG_DFL, SIG_IGN, type SigactionsState } from '../resources/process/sigactions.js';
import { pidTaken } from './pid.js';

export interface CloneArgs {
  entry: TreeEntry;
  /** Clone as our child (the root) rather than the parent's. */
  asOurChild: boolean;
  undo: Undo;
}

/** The signal the parent of `entry` gets when it exits (SIGCHLD unless it was a clone child). */
export function exitSignalOf(entry: Pick<TreeEntry, 'exitSignal'>): number {
  return entry.exitSignal ?? SIG.SIGCHLD;
}

/** Clones entry.pid out of `parent` (stopped, running blank code); returns a RemoteTask on it. */
export function cloneProcess(parent: RemoteTask, args: CloneArgs): RemoteTask {
  const { entry, undo } = args;
  const pid = entry.pid;
  const setTid = Buffer.alloc(4);
  setTid.writeInt32LE(pid);
  let flags = 0n;
  if (args.asOurChild) flags |= CLONE.PARENT;
  if (entry.sharesFiles) flags |= CLONE.FILES;
  if (entry.sharesFs) flags |= CLONE.FS;
  // clone3 refuses an exit_signal with CLONE_PARENT: the child then takes the blank's, SIGCHLD.
  const args3 = encodeCloneArgs({ flags, exitSignal: args.asOurChild ? 0n : BigInt(exitSignalOf(entry)), setTid: parent.put(setTid, 0), setTidSize: 1n });
  const got = parent.raw(NR.clone3, [parent.put(args3, 64), args3.length]);
  if (got === -17n) throw pidTaken(pid);
  if (got < 0n) throw new CkptError('PERMISSION', `Cannot restore process ${pid}: clone3 with set_tid failed (errno ${-got}); is CAP_CHECKPOINT_RESTORE missing?`);
  if (got !== BigInt(pid)) throw new CkptError('INTERNAL', `Cannot restore process ${pid}: clone3 gave pid ${got}`);
  undo.push(`kill ${pid}`, () => {
    const threads = otherThreads(pid);
    try {
      kill(pid, SIG.SIGKILL);
    } catch (e) {
      if (!isErrno(e, 'ESRCH')) throw e;
    }
    // Its threads are traced by us: each stays a zombie until we collect it, and the
    // process with them (its PID would stay taken for as long as ckpt runs).
    for (const tid of threads) {
      try {
        wait4(tid, WAIT.ALL);
      } catch {
        // collected already
      }
    }
  });
  const st = waitStop(pid);
  if (st.event !== PTRACE_EVENT.STOP) throw new CkptError('INTERNAL', `Cannot restore process ${pid}: unexpected first stop (event ${st.event})`);
  // The child runs what its parent runs: the blank's code, or the vDSO once the parent's memory is rebuilt.
  const remote = new RemoteTask(pid, { site: parent.site });
  // Dies with its parent until the tree is let go: a killed ckpt leaves nothing (with EXITKILL).
  armParentDeathKill(remote);
  if (entry.sid === pid) remote.call(NR.setsid, [], 'setsid');
  return remote;
}

function otherThreads(pid: number): number[] {
  try {
    return listTasks(pid).filter((t) => t !== pid);
  } catch {
    return [];
  }
}

/** Puts a process into its process group; group leaders first (see the file comment). */
export function joinGroup(remote: RemoteTask, entry: TreeEntry): void {
  remote.call(NR.setpgid, [0, entry.pgid], `setpgid(${entry.pgid})`);
}

/**
 * Turns a created process (still the blank's copy: default dispositions) into the
 * zombie it was, dying with the saved wait status. Its exit is collected here as its
 * tracer, so the parent's wait() then gets it, as it would have.
 */
export function becomeZombie(remote: RemoteTask, status: number): void {
  const tid = remote.tid;
  const signal = status & 0x7f;
  try {
    if (signal === 0) {
      remote.raw(NR.exit_group, [(status >> 8) & 0xff]);
    } else {
      ptrace.setSigmask(tid, 0n);
      remote.raw(NR.kill, [tid, signal]);
      ptrace.cont(tid, signal);
      for (;;) ptrace.cont(tid, waitStop(tid).signal);
    }
  } catch (e) {
    if (e instanceof TaskGoneError) return;
    throw e;
  }
  throw new CkptError('INTERNAL', `Cannot restore zombie ${tid}: it did not exit`);
}

const SA_NOCLDWAIT = 2n;

/**
 * Runs `fn` (which makes a zombie of a child of `parent`) with the parent's SIGCHLD at
 * SIG_DFL when its saved disposition is SIG_IGN or has SA_NOCLDWAIT, and puts that back
 * after. With those in force the kernel reaps a child as it dies, so the zombie the
 * parent still had at dump (it died before the parent ignored SIGCHLD) would be gone;
 * a zombie that exists already is not reaped when SIG_IGN is set again.
 */
export function withChildrenKept(parent: RemoteTask, opts: { sigactions?: SigactionsState }, fn: () => void): void {
  const saved = opts.sigactions?.actions.find((a) => a.signo === SIG.SIGCHLD);
  if (!saved || (saved.handler !== SIG_IGN && (saved.flags & SA_NOCLDWAIT) === 0n)) return fn();
  const dfl = encodeSigaction({ signo: SIG.SIGCHLD, handler: SIG_DFL, flags: 0n, restorer: 0n, mask: 0n });
  parent.call(NR.rt_sigaction, [SIG.SIGCHLD, parent.put(dfl), 0, 8], 'rt_sigaction(SIGCHLD, SIG_DFL)');
  fn();
  parent.call(NR.rt_sigaction, [SIG.SIGCHLD, parent.put(encodeSigaction(saved)), 0, 8], 'rt_sigaction(SIGCHLD)');
}

/**
 * A zombie made at restore sends its parent a SIGCHLD that the parent had already had
 * (or never wanted) at dump: it stays pending while the parent is held, and is taken
 * out of the queue unless one was pending at dump. A standard signal does not queue
 * twice, so a saved pending SIGCHLD is not doubled either.
 */
export function dropExitSignal(parent: RemoteTask, opts: { wasPending: boolean; signal: number }): void {
  if (opts.wasPending || opts.signal === 0) return;
  const set = Buffer.alloc(8);
  set.writeBigUInt64LE(1n << BigInt(opts.signal - 1));
  const r = parent.raw(NR.rt_sigtimedwait, [parent.put(set, 0), 0, parent.put(Buffer.alloc(16), 64), 8], 'rt_sigtimedwait(SIGCHLD)');
  if (r < 0n && r !== -11n /* EAGAIN: none arrived */) throw new CkptError('INTERNAL', `Cannot take the SIGCHLD of a restored zombie out of process ${parent.tid}'s queue: error ${-r}`);
}
