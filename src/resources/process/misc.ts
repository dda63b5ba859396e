/**
 * Small per-process settings with no better home: comm, personality, the parent-death
 * signal, child-subreaper, timer slack, the THP-disable flag and membarrier registrations. Each is one injected
 * prctl/personality call to read (no /proc file shows most of them) and one to write.
 *
 * comm, personality, pdeath signal and timer slack belong to a thread; this saves the
 * leader's (the other threads' are saved with each thread, resources/thread/threads.ts;
 * a thread's personality only where it differs from the leader's). The
 * autogroup's nice value is the session's: refused when not 0.
 *
 * The restore orchestrator keeps the parent-death signal at SIGKILL while a process is
 * being built (armParentDeathKill after this module and after the credentials, which
 * clear it: it dies with a killed ckpt, issue 9) and sets the saved value again when
 * the tree is let go (restoreParentDeathSignal).
 *
 * Order: early, before memory: personality and THP-disable change how the restored
 * areas are mapped and faulted, as they did in the original. READ_IMPLIES_EXEC and
 * memory-deny-write-execute (PR_SET_MDWE) would change the saved protections of the
 * areas (or forbid them): those two are set after the memory (restoreExecPolicy).
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { malformed, procPath } from '../../proc/index.js';
import { readProcText } from '../../proc/procfs.js';
import { CkptError } from '../../common/errors.js';
import { isErrno, NR, PR, SIG } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Resource } from '../types.js';
import { callIn, callsOut, cString } from './inject.js';
import { refuseSandboxed, refuseUnsavedKnobs, refuseUnsavedTaskState } from './knobs-refused.js';

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
  /** PR_THP_DISABLE_EXCEPT_ADVISED (Linux 6.18): THP only where madvise(MADV_HUGEPAGE) asks. */
  thpExceptAdvised?: boolean;
  /** Memory-deny-write-execute flags (PR_GET_MDWE, Linux 6.3), when any is set. */
  mdwe?: number;
  /** membarrier(2) registrations (MEMBARRIER_CMD_GET_REGISTRATIONS, Linux 6.3: REGISTER_* bits), when any. */
  membarrier?: number;
}

export const miscSchema: z.ZodType<MiscState> = z.object({
  comm: z.string().refine((s) => Buffer.byteLength(s) < TASK_COMM_LEN, `comm is at most ${TASK_COMM_LEN - 1} bytes`),
  personality: z.number().int().min(0).max(0xffffffff),
  pdeathSig: z.number().int().min(0).max(64),
  childSubreaper: z.boolean(),
  timerSlackNs: zBig,
  thpDisable: z.boolean(),
  thpExceptAdvised: z.boolean().optional(),
  mdwe: z.number().int().min(1).max(3).optional(),
  membarrier: z.number().int().min(1).refine((m) => (m & ~MEMBARRIER_REGISTERS) === 0, 'unknown membarrier registration').optional(),
});

const PR_THP_DISABLE_EXCEPT_ADVISED = 2;
const MEMBARRIER_CMD_GET_REGISTRATIONS = 1 << 9;
/** The REGISTER_* commands: GLOBAL_EXPEDITED, PRIVATE_EXPEDITED, its SYNC_CORE and RSEQ variants. */
const MEMBARRIER_REGISTERS = (1 << 2) | (1 << 4) | (1 << 6) | (1 << 8);
/** personality(2) flag: PROT_READ mappings are made executable too. */
const READ_IMPLIES_EXEC = 0x0400000;

function prctl(remote: RemoteTask, args: (number | bigint)[], what: string): bigint {
  return remote.call(NR.prctl, args, `prctl(${what})`);
}

/**
 * Memory-deny-write-execute flags. Not in misc's batch: a kernel before 6.3 answers
 * EINVAL, which means none. Through callsOut, so that restore --check gathers it.
 */
function readMdwe(r: RemoteTask): number {
  try {
    return Number(callsOut(r, [{ nr: NR.prctl, name: 'prctl(PR_GET_MDWE)', size: 0, args: () => [PR.GET_MDWE, 0, 0, 0, 0] }])[0]!.ret);
  } catch (e) {
    if (isErrno(e, 'EINVAL')) return 0;
    throw e;
  }
}

/**
 * The process's membarrier registrations (a program that registered for
 * MEMBARRIER_CMD_PRIVATE_EXPEDITED gets EPERM from it without: .NET, liburcu). A kernel
 * before 6.3 cannot tell (EINVAL): none are read there.
 */
function readMembarrier(r: RemoteTask): number {
  try {
    return Number(callsOut(r, [{ nr: NR.membarrier, name: 'membarrier(GET_REGISTRATIONS)', size: 0, args: () => [MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0] }])[0]!.ret);
  } catch (e) {
    if (isErrno(e, 'EINVAL')) return 0;
    throw e;
  }
}

export function readComm(pid: number): string {
  // comm is raw bytes ending in '\n'; /proc/PID/status escapes it, so read the comm file.
  return readProcText(pid, 'comm').replace(/\n$/, '');
}

/** personality(2) of thread `tid` (default: the leader). It is per task: a thread may have another. */
export function readPersonality(pid: number, tid = pid): number {
  const file = tid === pid ? 'personality' : `task/${tid}/personality`;
  const text = readProcText(pid, file).trim();
  if (!/^[0-9a-f]+$/i.test(text)) throw malformed(procPath(pid, file), `expected a hex number, got ${JSON.stringify(text)}`);
  return parseInt(text, 16);
}

/** Sets a thread's personality while memory is rebuilt: without READ_IMPLIES_EXEC (restoreExecPolicy sets it). */
export function setPersonality(remote: RemoteTask, personality: number): void {
  remote.call(NR.personality, [personality & ~READ_IMPLIES_EXEC], 'personality');
}

/**
 * The per-thread knobs of a thread other than the leader (the leader's are the
 * process's MiscState): timer slack and parent-death signal, which prctl sets per thread.
 */
export function readThreadKnobs(remote: RemoteTask, opts: { pid: number; checking?: boolean }): { timerSlackNs: bigint; pdeathSig: number; personality?: number } {
  if (!opts.checking) {
    const status = refuseUnsavedTaskState({ pid: opts.pid, tid: remote.tid });
    refuseUnsavedKnobs(remote, { pid: opts.pid, tid: remote.tid });
    refuseSandboxed(remote, { pid: opts.pid, tid: remote.tid, status });
  }
  // One stop for both reads (callsOut).
  const [slack, pdeath] = callsOut(remote, [
    { nr: NR.prctl, name: 'prctl(PR_GET_TIMERSLACK)', size: 0, args: () => [PR.GET_TIMERSLACK] },
    { nr: NR.prctl, name: 'prctl(PR_GET_PDEATHSIG)', size: 4, args: (addr) => [PR.GET_PDEATHSIG, addr] },
  ]);
  // Saved only where it differs from the leader's, which the thread is cloned with at restore.
  const personality = readPersonality(opts.pid, remote.tid);
  const own = personality === readPersonality(opts.pid) ? {} : { personality };
  return { timerSlackNs: slack!.ret, pdeathSig: pdeath!.out.readInt32LE(0), ...own };
}

export function setTimerSlack(remote: RemoteTask, ns: bigint): void {
  prctl(remote, [PR.SET_TIMERSLACK, ns], 'PR_SET_TIMERSLACK');
}

/**
 * The settings that limit how memory may be mapped, once the restore maps no more of the
 * program's memory (before the 'last' phase): READ_IMPLIES_EXEC (personality, per thread:
 * call it in every thread) and memory-deny-write-execute (per process, and it cannot be
 * cleared again; ckpt's own scratch areas are then mapped without PROT_EXEC).
 */
export function restoreExecPolicy(remote: RemoteTask, s: Pick<MiscState, 'personality' | 'mdwe'>): void {
  if ((s.personality & READ_IMPLIES_EXEC) !== 0) remote.call(NR.personality, [s.personality], 'personality');
  if (s.mdwe !== undefined) prctl(remote, [PR.SET_MDWE, s.mdwe, 0, 0, 0], 'PR_SET_MDWE');
}

/** While the process is built: SIGKILL when its parent (ckpt, or its restored parent) dies. */
export function armParentDeathKill(remote: RemoteTask): void {
  prctl(remote, [PR.SET_PDEATHSIG, SIG.SIGKILL], 'PR_SET_PDEATHSIG(SIGKILL)');
}

/** The saved parent-death signal, set as the tree is let go (after the credentials, which clear it). */
export function restoreParentDeathSignal(remote: RemoteTask, s: Pick<MiscState, 'pdeathSig'>): void {
  prctl(remote, [PR.SET_PDEATHSIG, s.pdeathSig], 'PR_SET_PDEATHSIG');
}

/**
 * The autogroup's nice value from /proc/PID/autogroup ("/autogroup-N nice X"), or
 * undefined when the process is in no autogroup of its own: the kernel then prints
 * nothing (init's session, and every process started from it without setsid).
 */
export function parseAutogroupNice(file: string, text: string): number | undefined {
  if (text.trim() === '') return undefined;
  const nice = /^\/autogroup-\d+ nice (-?\d+)$/.exec(text.trim())?.[1];
  if (nice === undefined) throw malformed(file, `expected "/autogroup-N nice X", got ${JSON.stringify(text.trim())}`);
  return Number(nice);
}

/**
 * The autogroup belongs to the session, which a restore may share with the restorer (a
 * shell job), so its nice value is not set at restore: a value other than 0 is refused.
 */
function checkAutogroup(pid: number): void {
  let text: string;
  try {
    text = readProcText(pid, 'autogroup');
  } catch {
    return; // no CONFIG_SCHED_AUTOGROUP
  }
  const nice = parseAutogroupNice(procPath(pid, 'autogroup'), text);
  if (nice !== undefined && nice !== 0) {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: its autogroup (session) has nice ${nice}, which is not saved`);
  }
}

export const misc: Resource<MiscState> = {
  name: 'misc',
  schema: miscSchema,
  dump(ctx) {
    const r = ctx.remote;
    // Refusals only: a restored thread descends from ckpt's blank process and has ckpt's
    // values of these by construction, so restore --check (checking) learns nothing from them.
    if (!ctx.checking) {
      checkAutogroup(ctx.pid);
      const status = refuseUnsavedTaskState({ pid: ctx.pid, tid: ctx.pid });
      refuseUnsavedKnobs(ctx.remote, { pid: ctx.pid, tid: ctx.pid });
      refuseSandboxed(ctx.remote, { pid: ctx.pid, tid: ctx.pid, status });
    }
    // One stop for the four reads (callsOut).
    const [thpGot, pdeath, subreaper, slack] = callsOut(r, [
      { nr: NR.prctl, name: 'prctl(PR_GET_THP_DISABLE)', size: 0, args: () => [PR.GET_THP_DISABLE, 0, 0, 0, 0] },
      { nr: NR.prctl, name: 'prctl(PR_GET_PDEATHSIG)', size: 4, args: (addr) => [PR.GET_PDEATHSIG, addr] },
      { nr: NR.prctl, name: 'prctl(PR_GET_CHILD_SUBREAPER)', size: 4, args: (addr) => [PR.GET_CHILD_SUBREAPER, addr] },
      { nr: NR.prctl, name: 'prctl(PR_GET_TIMERSLACK)', size: 0, args: () => [PR.GET_TIMERSLACK] },
    ]);
    const thp = thpGot!.ret;
    const state: MiscState = {
      comm: readComm(ctx.pid),
      personality: readPersonality(ctx.pid),
      pdeathSig: pdeath!.out.readInt32LE(0),
      childSubreaper: subreaper!.out.readInt32LE(0) !== 0,
      timerSlackNs: slack!.ret,
      thpDisable: thp !== 0n,
    };
    // Only when set, so that images of older kernels' processes read back the same.
    if ((thp & BigInt(PR_THP_DISABLE_EXCEPT_ADVISED)) !== 0n) state.thpExceptAdvised = true;
    const mdwe = readMdwe(r);
    if (mdwe > 0) state.mdwe = mdwe;
    const membarrier = readMembarrier(r);
    if (membarrier > 0) state.membarrier = membarrier;
    return state;
  },
  restore(ctx, s) {
    const r = ctx.remote;
    callIn(r, { nr: NR.prctl, name: 'prctl(PR_SET_NAME)', data: cString(s.comm), args: (addr) => [PR.SET_NAME, addr] });
    // Without READ_IMPLIES_EXEC while memory is rebuilt: it would add PROT_EXEC to every
    // readable area mapped or mprotected (restoreExecPolicy sets it once they are in).
    setPersonality(r, s.personality);
    prctl(r, [PR.SET_PDEATHSIG, s.pdeathSig], 'PR_SET_PDEATHSIG');
    prctl(r, [PR.SET_CHILD_SUBREAPER, s.childSubreaper ? 1 : 0], 'PR_SET_CHILD_SUBREAPER');
    setTimerSlack(r, s.timerSlackNs);
    const thpFlags = s.thpDisable && s.thpExceptAdvised ? PR_THP_DISABLE_EXCEPT_ADVISED : 0;
    prctl(r, [PR.SET_THP_DISABLE, s.thpDisable ? 1 : 0, thpFlags, 0, 0], 'PR_SET_THP_DISABLE');
    // Each registration is its REGISTER_* command, run again (per process: the mm keeps it).
    for (let bit = 1; bit <= MEMBARRIER_REGISTERS; bit <<= 1) {
      if (((s.membarrier ?? 0) & bit) !== 0) r.call(NR.membarrier, [bit, 0, 0], `membarrier(REGISTER ${bit})`);
    }
  },
};
