/** pidfds: stable handles on processes, and copying another process's fds. */
import { callNum } from './call.js';
import { NR } from './nr.js';

export function pidfdOpen(pid: number, flags = 0): number {
  return callNum(NR.pidfd_open, [pid, flags], { name: 'pidfd_open', pid });
}

/** A duplicate, in this process, of fd `targetFd` of the process behind `pidfd` (same open file description). */
export function pidfdGetfd(pidfd: number, targetFd: number, opts: { pid?: number } = {}): number {
  return callNum(NR.pidfd_getfd, [pidfd, targetFd, 0], { name: `pidfd_getfd(fd ${targetFd})`, pid: opts.pid });
}

export function pidfdSendSignal(pidfd: number, sig: number, opts: { pid?: number } = {}): void {
  callNum(NR.pidfd_send_signal, [pidfd, sig, 0, 0], { name: 'pidfd_send_signal', pid: opts.pid });
}
