/**
 * Waiting for a tracee to stop. All waits are synchronous: if Node's event loop ran
 * between a PTRACE_INTERRUPT and our wait4, Node could reap the stop of a target that
 * is its own child.
 */
import { CkptError } from '../common/errors.js';
import { wait4, WAIT, type WaitStatus, isErrno } from '../sys/index.js';

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Synchronous sleep: the event loop must not run while a tracee is between stops. */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

export type StopStatus = Extract<WaitStatus, { kind: 'stopped' }>;

export class TaskGoneError extends CkptError {
  readonly tid: number;
  readonly status: WaitStatus | undefined;
  constructor(tid: number, status?: WaitStatus) {
    const how =
      status?.kind === 'exited' ? `exited with status ${status.code}` : status?.kind === 'signaled' ? `was killed by signal ${status.signal}` : 'is gone';
    super('NO_PROCESS', `Cannot control task ${tid}: it ${how}`);
    this.tid = tid;
    this.status = status;
  }
}

/**
 * Waits for the next stop of tid. Blocks in the kernel when no timeout is given
 * (for steps that are known to stop promptly, like an injected syscall); polls
 * otherwise, so a task stuck in uninterruptible sleep cannot hang the dump forever.
 */
export function waitStop(tid: number, opts: { timeoutMs?: number } = {}): StopStatus {
  if (opts.timeoutMs === undefined) return stopOf(tid, wait4Task(tid, WAIT.ALL))!;
  const deadline = Date.now() + opts.timeoutMs;
  let pause = 0.05;
  for (;;) {
    const st = pollStop(tid);
    if (st) return st;
    if (Date.now() > deadline) throw new CkptError('TIMEOUT', `Cannot stop task ${tid}: no stop within ${opts.timeoutMs} ms`);
    sleepSync(pause);
    pause = Math.min(pause * 2, 5);
  }
}

function wait4Task(tid: number, flags: number): WaitStatus {
  try {
    return wait4(tid, flags);
  } catch (e) {
    if (isErrno(e, 'ECHILD') || isErrno(e, 'ESRCH')) throw new TaskGoneError(tid);
    throw e;
  }
}

/** The stop in `st`, undefined if there is none yet; an exit is a TaskGoneError. */
function stopOf(tid: number, st: WaitStatus): StopStatus | undefined {
  if (st.kind === 'none') return undefined;
  if (st.kind === 'stopped') return st;
  throw new TaskGoneError(tid, st);
}

/** The stop tid is in, if it has stopped since the last wait; never blocks. */
export function pollStop(tid: number): StopStatus | undefined {
  return stopOf(tid, wait4Task(tid, WAIT.ALL | WAIT.NOHANG));
}
