/**
 * The stop report a stopped child leaves for its parent: waitpid(WUNTRACED) returns it
 * once (with the stop signal), then nothing until the child stops again. Whether the
 * parent has collected it is kept in the child's signal struct (group_exit_code), shown
 * by no /proc file: the dump asks the parent itself, with an injected
 * waitid(WSTOPPED|WNOWAIT|WNOHANG), which reports without collecting. The restore stops
 * the child again (a new report, and a SIGCHLD) while the parent is still held, and
 * collects that report in the parent when it had collected the old one
 * (restore/stopped.ts).
 */
import type { RemoteTask } from '../../infect/index.js';
import { NR, WAIT } from '../../sys/index.js';
import { callsOut } from './inject.js';

const P_PID = 1;
const WSTOPPED = 2;
const WNOWAIT = 0x01000000;
const SIGINFO_SIZE = 128;

export interface StopReport {
  /** The parent has collected it (waitpid(WUNTRACED) would not report the child now). */
  collected: boolean;
  /** The stop signal it reports (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU), when not collected. */
  signal?: number;
}

/** The stop report of each child in `children` (stopped ones), read in their parent `parent`. */
export function readStopReports(parent: RemoteTask, children: readonly number[]): Map<number, StopReport> {
  const outs = callsOut(parent, children.map((child) => ({
    nr: NR.waitid,
    name: `waitid(${child}, WSTOPPED|WNOWAIT)`,
    size: SIGINFO_SIZE,
    args: (info: bigint) => [P_PID, child, info, WSTOPPED | WNOWAIT | WAIT.NOHANG | WAIT.ALL, 0],
  })));
  return new Map(children.map((child, i) => {
    const info = outs[i]!.out;
    // siginfo for a child: si_pid at 16, si_status at 24; si_pid 0 when there is nothing to report.
    const reported = info.readInt32LE(16) === child;
    return [child, reported ? { collected: false, signal: info.readInt32LE(24) } : { collected: true }];
  }));
}

/** Collects the stop report of `child` in `parent`, as the parent had done before the dump. */
export function collectStopReport(parent: RemoteTask, child: number): void {
  parent.raw(NR.wait4, [child, 0, WAIT.UNTRACED | WAIT.NOHANG | WAIT.ALL, 0], `wait4(${child}, WUNTRACED)`);
}
