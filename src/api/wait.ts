/**
 * Waiting for a process without blocking the event loop. wait4 through koffi is
 * synchronous, so we poll it with WNOHANG on a timer instead of blocking in it.
 * A process that is not our child (ECHILD: restored by another ckpt, or reparented)
 * has no status for us: we then watch /proc/PID until it is gone or a zombie.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isErrno, wait4, WAIT } from '../sys/index.js';

export interface ExitStatus {
  /** Exit code, when it exited normally and was our child. */
  code?: number;
  /** Signal that killed it, when it was our child. */
  signal?: number;
}

export interface WaitOptions {
  /** Poll interval, ms (default 20). */
  intervalMs?: number;
}

function goneOrZombie(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] === 'Z';
  } catch {
    return true; // vanished between the two reads
  }
}

/** One non-blocking look: the status if it ended, undefined if it still runs. */
function poll(pid: number): ExitStatus | undefined {
  try {
    // __WALL: a restored process may be a clone child whose exit signal is not SIGCHLD.
    const st = wait4(pid, WAIT.NOHANG | WAIT.ALL);
    if (st.kind === 'exited') return { code: st.code };
    if (st.kind === 'signaled') return { signal: st.signal };
    return undefined;
  } catch (e) {
    if (!isErrno(e, 'ECHILD')) throw e;
    return goneOrZombie(pid) ? {} : undefined;
  }
}

/** Resolves when `pid` exits, with its status when it was our child (and reaps it). */
export function waitForExit(pid: number, opts: WaitOptions = {}): Promise<ExitStatus> {
  const interval = opts.intervalMs ?? 20;
  return new Promise((resolve, reject) => {
    const tick = () => {
      try {
        const st = poll(pid);
        if (st) resolve(st);
        else setTimeout(tick, interval);
      } catch (e) {
        reject(e);
      }
    };
    tick();
  });
}
