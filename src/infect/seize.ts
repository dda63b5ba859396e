/**
 * Seizing a process: PTRACE_SEIZE + PTRACE_INTERRUPT on every thread, re-scanning
 * /proc/PID/task until no new thread appears (a thread can only create threads while
 * it runs, so once every known thread is stopped and a scan finds nothing new, the
 * set is complete). Every seized thread registers its detach on the undo stack.
 */
import { CkptError } from '../common/errors.js';
import { isKernelThread, listTasks, readStat, readStatus, readTaskStatus } from '../proc/index.js';
import { collectExit, isErrno, kill, ptrace, PTRACE_EVENT, PTRACE_O, SysError, wait4, WAIT } from '../sys/index.js';
import { detachThread } from './enter-call.js';
import { Undo } from './undo.js';
import { sleepSync, TaskGoneError, type StopStatus } from './wait.js';

export interface SeizeOptions {
  /** How long to wait for one thread to stop (ms). */
  timeoutMs?: number;
  /** Extra PTRACE_O_* options (TRACESYSGOOD is always set). */
  ptraceOptions?: number;
  /**
   * Called while a thread has not stopped yet: a thread blocked on a userfaultfd event of
   * ckpt's own (a background dump) stops only once ckpt reads that event.
   */
  onWait?: () => void;
}

export interface SeizedTask {
  tid: number;
  /** The stop we hold it in: an interrupt stop, or a group stop (signal = SIGSTOP etc). */
  stop: StopStatus;
  /** True when the process was already stopped (group stop) before we seized it. */
  groupStopped: boolean;
}

const SIGTRAP = 5;

function noProcess(pid: number, e: unknown): CkptError {
  return new CkptError('NO_PROCESS', `Cannot seize process ${pid}: no such process`, { cause: e });
}

function listTids(pid: number): number[] {
  try {
    return listTasks(pid);
  } catch (e) {
    throw noProcess(pid, e);
  }
}

function checkSeizable(pid: number): void {
  let stat;
  try {
    stat = readStat(pid);
  } catch (e) {
    throw noProcess(pid, e);
  }
  if (isKernelThread(stat)) throw new CkptError('KERNEL_THREAD', `Cannot seize process ${pid}: it is a kernel thread`);
  if (pid === process.pid) throw new CkptError('USAGE', `Cannot seize process ${pid}: it is ckpt itself`);
  if (stat.state === 'Z' || stat.state === 'X') throw new CkptError('NO_PROCESS', `Cannot seize process ${pid}: it is a zombie`);
}

export class SeizedProcess {
  readonly pid: number;
  readonly tasks = new Map<number, SeizedTask>();
  readonly undo = new Undo();
  /** Run just before the process is killed at the end of a dump (not on release). */
  readonly atKill: (() => void)[] = [];

  constructor(pid: number) {
    this.pid = pid;
  }

  get tids(): number[] {
    return [...this.tasks.keys()].sort((a, b) => a - b);
  }

  /** Undo every change and detach: the process runs on as before. */
  release(): void {
    const failed = this.undo.runAll();
    this.tasks.clear();
    if (failed.length > 0) {
      const what = failed.map((f) => `${f.label}: ${(f.error as Error).message}`).join('; ');
      throw new CkptError('INTERNAL', `Cannot release process ${this.pid} cleanly: ${what}`);
    }
  }
}

/**
 * Waits for the interrupt stops of freshly seized threads, all at once: each pass polls
 * every pending thread (WNOHANG), so a thousand threads cost one short sleep, not a
 * thousand. A signal-delivery stop is handed back; the pending interrupt stops the
 * thread again right after. A thread that exits is reported as TaskGoneError.
 */
function collectStops(tids: number[], opts: { timeoutMs: number; onWait?: () => void }): Map<number, StopStatus | TaskGoneError> {
  const out = new Map<number, StopStatus | TaskGoneError>();
  const pending = new Set(tids);
  const { timeoutMs } = opts;
  const deadline = Date.now() + timeoutMs;
  let pause = 0.02;
  while (pending.size > 0) {
    let progressed = false;
    for (const tid of pending) {
      let st;
      try {
        st = wait4(tid, WAIT.ALL | WAIT.NOHANG);
      } catch (e) {
        if (!isErrno(e, 'ECHILD') && !isErrno(e, 'ESRCH')) throw e;
        st = undefined;
      }
      if (st?.kind === 'none') continue;
      progressed = true;
      if (st?.kind !== 'stopped') {
        out.set(tid, new TaskGoneError(tid, st));
        pending.delete(tid);
      } else if (st.event === PTRACE_EVENT.STOP) {
        out.set(tid, st);
        pending.delete(tid);
      } else {
        try {
          ptrace.cont(tid, st.event === 0 && st.signal !== (SIGTRAP | 0x80) ? st.signal : 0);
        } catch (e) {
          if (!isErrno(e, 'ESRCH')) throw e; // killed meanwhile: the next wait4 reports its exit
        }
      }
    }
    if (pending.size === 0) break;
    if (Date.now() > deadline) {
      throw new CkptError('TIMEOUT', `Cannot stop task ${[...pending][0]}: no stop within ${timeoutMs} ms`);
    }
    if (progressed) pause = 0.02;
    else {
      opts.onWait?.();
      sleepSync(pause);
      pause = Math.min(pause * 2, 2);
    }
  }
  return out;
}

/** "process N (comm)", or just "process N" when it is gone. */
export function nameOf(pid: number): string {
  try {
    return `process ${pid} (${readStatus(pid).name})`;
  } catch {
    return `process ${pid}`;
  }
}

/**
 * Why PTRACE_SEIZE of `tid` failed with EPERM. The kernel says EPERM for a task that
 * is exiting (exit_state set: a zombie, or on its way to being reaped), one that is
 * traced already, and one we may not trace. 'gone' means the first: the caller skips
 * the thread, or reports the process as exited (a child in a tree is then a zombie).
 * /proc shows exit_state at once (state Z or X), so one look tells them apart.
 */
function seizeRefused(pid: number, tid: number, e: unknown): 'gone' | CkptError {
  const what = tid === pid ? `process ${pid}` : `process ${pid} (thread ${tid})`;
  let status;
  try {
    status = readTaskStatus(pid, tid);
  } catch {
    return 'gone';
  }
  if (status.state === 'Z' || status.state === 'X') return 'gone';
  if (status.tracerPid === process.pid) {
    return new CkptError('INTERNAL', `Cannot seize ${what}: this ckpt process traces it already`, { cause: e });
  }
  if (status.tracerPid !== 0) {
    return new CkptError('PERMISSION', `Cannot seize ${what}: it is traced by ${nameOf(status.tracerPid)}`, { cause: e });
  }
  return new CkptError('PERMISSION', `Cannot seize ${what}: not permitted (owned by another user, or ptrace is restricted)`, { cause: e });
}

/** The options restore traces the processes it builds with (the blank's, which its clones inherit). */
export const RESTORE_PTRACE_OPTIONS = PTRACE_O.TRACESYSGOOD | PTRACE_O.TRACEFORK | PTRACE_O.TRACECLONE | PTRACE_O.EXITKILL;

/**
 * A stopped thread under seccomp (strict mode or filters) would have the syscalls
 * injected into it filtered, maybe killing it: PTRACE_O_SUSPEND_SECCOMP (which needs
 * CAP_SYS_ADMIN) lifts its filters while we trace it; detaching puts them back.
 */
export function suspendSeccomp(tid: number, options: number): void {
  let mode: number;
  try {
    mode = readTaskStatus(tid, tid).seccomp;
  } catch {
    return; // gone: the caller finds out
  }
  if (mode === 0) return;
  try {
    ptrace.setOptions(tid, options | PTRACE_O.SUSPEND_SECCOMP);
  } catch (e) {
    if (isErrno(e, 'EPERM')) throw new CkptError('PERMISSION', `Cannot seize thread ${tid}: it runs under seccomp, and suspending its filters while ckpt injects syscalls needs CAP_SYS_ADMIN`, { cause: e });
    throw e;
  }
}

export function seizeProcess(pid: number, opts: SeizeOptions = {}): SeizedProcess {
  checkSeizable(pid);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const options = PTRACE_O.TRACESYSGOOD | (opts.ptraceOptions ?? 0);
  const proc = new SeizedProcess(pid);
  try {
    for (let round = 0; ; round++) {
      const fresh = listTids(pid).filter((t) => !proc.tasks.has(t));
      if (fresh.length === 0) break;
      if (round > 1000) throw new CkptError('TIMEOUT', `Cannot seize process ${pid}: its threads keep changing`);
      const seized: number[] = [];
      for (const tid of fresh) {
        try {
          ptrace.seize(tid, options);
        } catch (e) {
          if (isErrno(e, 'ESRCH')) continue; // exited between scan and seize
          if (!isErrno(e, 'EPERM')) throw e;
          const why = seizeRefused(pid, tid, e);
          if (why !== 'gone') throw why;
          if (tid === pid) throw new CkptError('NO_PROCESS', `Cannot seize process ${pid}: it exited`, { cause: e });
          continue; // a thread that is exiting is not part of the process any more
        }
        proc.undo.push(`detach ${tid}`, () => {
          try {
            detachThread(tid);
          } catch (e) {
            if (!isErrno(e, 'ESRCH')) throw e;
          }
        });
        seized.push(tid);
        ptrace.interrupt(tid);
      }
      for (const [tid, stop] of collectStops(seized, { timeoutMs, onWait: opts.onWait })) {
        if (stop instanceof TaskGoneError) {
          if (tid !== pid) continue; // a thread exited: not part of the process any more
          throw stop;
        }
        proc.tasks.set(tid, { tid, stop, groupStopped: stop.signal !== SIGTRAP });
        suspendSeccomp(tid, options);
      }
    }
    if (!proc.tasks.has(pid)) throw new CkptError('NO_PROCESS', `Cannot seize process ${pid}: it exited`);
    return proc;
  } catch (e) {
    try {
      proc.release();
    } catch {
      // the original error says more
    }
    if (e instanceof SysError && e.errnoName === 'ESRCH') throw new CkptError('NO_PROCESS', `Cannot seize process ${pid}: it exited`, { cause: e });
    throw e;
  }
}

/**
 * Kills a seized process and collects the exit of each of its threads: a traced
 * thread stays a zombie until its tracer reaps it, and the process cannot finish
 * dying (nor its PID become free) before that.
 */
export function killSeized(proc: SeizedProcess): void {
  kill(proc.pid, 9);
  // The leader's exit is reported only once every other thread is reaped: it goes last.
  const order = [...proc.tids.filter((t) => t !== proc.pid), proc.pid];
  for (const tid of order) collectExit(tid);
  proc.undo.clear();
  proc.tasks.clear();
}
