/**
 * Small per-process settings with no better home: comm, personality, the parent-death
 * signal, child-subreaper, timer slack and the THP-disable flag. Each is one injected
 * prctl/personality call to read (no /proc file shows most of them) and one to write.
 *
 * comm, pdeath signal and timer slack belong to a thread; this saves the leader's.
 *
 * The restore orchestrator keeps the parent-death signal at SIGKILL while a process is
 * being built (armParentDeathKill after this module and after the credentials, which
 * clear it: it dies with a killed ckpt, issue 9) and sets the saved value again when
 * the tree is let go (restoreParentDeathSignal).
 *
 * Order: early, before memory: personality (READ_IMPLIES_EXEC) and THP-disable change
 * how the restored areas are mapped and faulted, as they did in the original.
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { malformed, procPath } from '../../proc/index.js';
import { readProcText } from '../../proc/procfs.js';
import { NR, PR, SIG } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Resource } from '../types.js';
import { callIn, callOut, cString } from './inject.js';

const TASK_COMM_LEN = 16;

export interface MiscState {
  /** Thread name, at most 15 bytes. */
  comm: string;
  personality: number;
  /** Signal sent when the parent dies (0 = none). */
  pdeathSig: number;
  childSubreaper: boolean;
  timerSlackNs: bigint;
  thpDisable: boolean;
}

export const miscSchema: z.ZodType<MiscState> = z.object({
  comm: z.string().refine((s) => Buffer.byteLength(s) < TASK_COMM_LEN, `comm is at most ${TASK_COMM_LEN - 1} bytes`),
  personality: z.number().int().min(0).max(0xffffffff),
  pdeathSig: z.number().int().min(0).max(64),
  childSubreaper: z.boolean(),
  timerSlackNs: zBig,
  thpDisable: z.boolean(),
});

function prctl(remote: RemoteTask, args: (number | bigint)[], what: string): bigint {
  return remote.call(NR.prctl, args, `prctl(${what})`);
}

/** prctl options that store an int at *arg2 instead of returning it. */
function prctlInt(remote: RemoteTask, option: number, what: string): number {
  return callOut(remote, { nr: NR.prctl, name: `prctl(${what})`, size: 4, args: (addr) => [option, addr] }).readInt32LE(0);
}

export function readComm(pid: number): string {
  // comm is raw bytes ending in '\n'; /proc/PID/status escapes it, so read the comm file.
  return readProcText(pid, 'comm').replace(/\n$/, '');
}

function readPersonality(pid: number): number {
  const text = readProcText(pid, 'personality').trim();
  const n = parseInt(text, 16);
  if (!/^[0-9a-f]+$/i.test(text)) throw malformed(procPath(pid, 'personality'), `expected a hex number, got ${JSON.stringify(text)}`);
  return n;
}

/** While the process is built: SIGKILL when its parent (ckpt, or its restored parent) dies. */
export function armParentDeathKill(remote: RemoteTask): void {
  prctl(remote, [PR.SET_PDEATHSIG, SIG.SIGKILL], 'PR_SET_PDEATHSIG(SIGKILL)');
}

/** The saved parent-death signal, set as the tree is let go (after the credentials, which clear it). */
export function restoreParentDeathSignal(remote: RemoteTask, s: MiscState): void {
  prctl(remote, [PR.SET_PDEATHSIG, s.pdeathSig], 'PR_SET_PDEATHSIG');
}

export const misc: Resource<MiscState> = {
  name: 'misc',
  schema: miscSchema,
  dump(ctx) {
    const r = ctx.remote;
    return {
      comm: readComm(ctx.pid),
      personality: readPersonality(ctx.pid),
      pdeathSig: prctlInt(r, PR.GET_PDEATHSIG, 'PR_GET_PDEATHSIG'),
      childSubreaper: prctlInt(r, PR.GET_CHILD_SUBREAPER, 'PR_GET_CHILD_SUBREAPER') !== 0,
      timerSlackNs: prctl(r, [PR.GET_TIMERSLACK], 'PR_GET_TIMERSLACK'),
      thpDisable: prctl(r, [PR.GET_THP_DISABLE, 0, 0, 0, 0], 'PR_GET_THP_DISABLE') !== 0n,
    };
  },
  restore(ctx, s) {
    const r = ctx.remote;
    callIn(r, { nr: NR.prctl, name: 'prctl(PR_SET_NAME)', data: cString(s.comm), args: (addr) => [PR.SET_NAME, addr] });
    r.call(NR.personality, [s.personality], 'personality');
    prctl(r, [PR.SET_PDEATHSIG, s.pdeathSig], 'PR_SET_PDEATHSIG');
    prctl(r, [PR.SET_CHILD_SUBREAPER, s.childSubreaper ? 1 : 0], 'PR_SET_CHILD_SUBREAPER');
    prctl(r, [PR.SET_TIMERSLACK, s.timerSlackNs], 'PR_SET_TIMERSLACK');
    prctl(r, [PR.SET_THP_DISABLE, s.thpDisable ? 1 : 0, 0, 0, 0], 'PR_SET_THP_DISABLE');
  },
};
