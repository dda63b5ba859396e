/** wait4(2) and decoding of wait statuses. */
import { call } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

export const WAIT = {
  NOHANG: 1,
  UNTRACED: 2,
  CONTINUED: 8,
  NOTHREAD: 0x20000000,
  ALL: 0x40000000,
  CLONE: 0x80000000,
} as const;

export type WaitStatus =
  | { kind: 'exited'; pid: number; code: number }
  | { kind: 'signaled'; pid: number; signal: number; core: boolean }
  /** A ptrace or group stop. `event` is the PTRACE_EVENT_* (0 for a plain signal stop). */
  | { kind: 'stopped'; pid: number; signal: number; event: number; raw: number }
  | { kind: 'continued'; pid: number }
  | { kind: 'none' };

export function decodeStatus(pid: number, status: number): WaitStatus {
  if (pid === 0) return { kind: 'none' };
  if ((status & 0x7f) === 0) return { kind: 'exited', pid, code: (status >> 8) & 0xff };
  if ((status & 0xff) === 0x7f) return { kind: 'stopped', pid, signal: (status >> 8) & 0xff, event: (status >> 16) & 0xff, raw: status };
  if (status === 0xffff) return { kind: 'continued', pid };
  return { kind: 'signaled', pid, signal: status & 0x7f, core: (status & 0x80) !== 0 };
}

/** wait4(pid, &status, flags, NULL). pid -1 waits for any child/tracee. */
export function wait4(pid: number, flags = 0): WaitStatus {
  const st = Buffer.alloc(4);
  const got = Number(call(NR.wait4, [pid, addressOf(st), flags, 0], { name: 'wait4', pid: pid > 0 ? pid : undefined }));
  return decodeStatus(got, st.readInt32LE(0));
}

/**
 * Waits until `pid` (a child or tracee, or a thread of one) has exited and collects it;
 * returns at once if it was collected already (ECHILD).
 */
export function collectExit(pid: number): void {
  for (;;) {
    let st;
    try {
      st = wait4(pid, WAIT.ALL);
    } catch {
      return; // ECHILD: already collected
    }
    if (st.kind === 'exited' || st.kind === 'signaled') return;
  }
}
