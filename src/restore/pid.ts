/** Making sure a PID is free before restore asks for it with clone3(set_tid). */
import { CkptError } from '../common/errors.js';
import { readStat } from '../proc/index.js';
import { checkInterrupted, sleepSync } from '../infect/index.js';

function holder(pid: number): { comm: string; zombie: boolean } | undefined {
  try {
    const stat = readStat(pid);
    return { comm: stat.comm, zombie: stat.state === 'Z' };
  } catch {
    return undefined;
  }
}

/**
 * Returns once `pid` is free. A zombie (a killed process its parent or init has not
 * reaped yet; init here reaps lazily, up to ~2 s) is waited for; a live process is an error.
 */
export function waitPidFree(pid: number, opts: { timeoutMs?: number; what?: string } = {}): void {
  const deadline = Date.now() + (opts.timeoutMs ?? 5000);
  for (;;) {
    const h = holder(pid);
    if (!h) return;
    if (!h.zombie || Date.now() > deadline) {
      throw pidTaken(pid, { comm: h.comm, what: opts.what });
    }
    checkInterrupted();
    sleepSync(5);
  }
}

export function pidTaken(pid: number, opts: { comm?: string; what?: string } = {}): CkptError {
  const who = opts.comm ?? holder(pid)?.comm;
  return new CkptError('PID_TAKEN', `Cannot restore ${opts.what ?? `process ${pid}`}: PID ${pid} is in use${who ? ` by "${who}"` : ''}`);
}
