/**
 * Per-process and per-thread state other than memory, registers and files.
 *
 * PROCESS_RESOURCES is in the order the orchestrator must run them. For DUMP any
 * order works except that `seccomp` comes first: it refuses what cannot be saved
 * before anything is injected. For RESTORE each module has a phase
 * (PROCESS_RESTORE_PHASE) placing it among the steps the orchestrator owns:
 *
 *  - 'before-memory'  misc: personality (READ_IMPLIES_EXEC) and THP-disable shape how
 *                     restored areas are mapped and faulted.
 *                     cgroup: the process joins its cgroup before its pages are charged.
 *  - 'after-memory'   sigactions, sigaltstack, futex: addresses into restored memory
 *                     (handlers, restorers, stacks, futex words).
 *                     rseq: the kernel writes into the area at once; unmapped = SIGSEGV.
 *                     mempolicy: each area's policy (mbind) needs the area; the
 *                     thread's is set before the threads are cloned from the leader.
 *  - 'after-files'    fs: chdir/chroot/umask would change how the files restore
 *                     resolves and creates paths.
 *                     limits: a lowered RLIMIT_NOFILE/NPROC/AS/MEMLOCK would block the
 *                     restore's own fds, threads and mappings (also after threads).
 *                     itimers: as late as possible, so ITIMER_REAL is not eaten by the
 *                     restore itself.
 *                     posixTimers: late for the same reason, and after threads (a
 *                     timer may signal one thread).
 *                     pending: after sigactions (setting SIG_IGN discards pending
 *                     signals); signals stay blocked until the final mask.
 *  - 'finish'         sigmask: injects nothing; the orchestrator passes
 *                     finalSigmask(state) to remote.finish({ mask }).
 *  - 'last'           seccomp: first in each thread, before creds (installing a filter
 *                     needs our CAP_SYS_ADMIN or no_new_privs); what is injected after
 *                     it runs with the filters suspended (PTRACE_O_SUSPEND_SECCOMP).
 *                     sched: scheduling policy, affinity, oom_score_adj, set by ckpt
 *                     on every thread once no more forks or clones are injected.
 *                     creds: after everything that needs the restorer's privilege
 *                     (chroot, prlimit, PR_SET_MM …); call checkCredsRestorable()
 *                     at the start of the restore as well, to fail before building.
 */
import type { Resource } from '../types.js';
import { creds } from './creds.js';
import { fs } from './fs.js';
import { futex } from './futex.js';
import { itimers } from './itimers.js';
import { limits } from './limits.js';
import { mempolicy } from './mempolicy.js';
import { misc } from './misc.js';
import { cgroup } from './cgroup.js';
import { pending } from './pending.js';
import { posixTimers } from './posix-timers.js';
import { rseq } from './rseq.js';
import { sched } from './sched.js';
import { seccomp } from './seccomp.js';
import { sigactions } from './sigactions.js';
import { sigaltstack } from './sigaltstack.js';
import { sigmask } from './sigmask.js';

export type RestorePhase = 'before-memory' | 'after-memory' | 'after-files' | 'finish' | 'last';

export const PROCESS_RESOURCES: readonly Resource<unknown>[] = [
  seccomp, // dump first (no injection before it); restore: last, first of that phase
  misc, // before memory
  cgroup, // before memory: pages are charged where they were
  sigactions, // after memory
  sigaltstack, // after memory
  futex, // after memory
  rseq, // after memory
  mempolicy, // after memory
  fs, // after files
  limits, // after files and threads
  itimers, // late
  posixTimers, // late, after threads
  pending, // after sigactions, before finish
  sigmask, // via remote.finish({ mask: finalSigmask(state) })
  sched, // last, before creds
  creds, // last
];

export const PROCESS_RESTORE_PHASE: Readonly<Record<string, RestorePhase>> = {
  seccomp: 'last',
  misc: 'before-memory',
  cgroup: 'before-memory',
  sigactions: 'after-memory',
  sigaltstack: 'after-memory',
  futex: 'after-memory',
  rseq: 'after-memory',
  mempolicy: 'after-memory',
  fs: 'after-files',
  limits: 'after-files',
  itimers: 'after-files',
  posixTimers: 'after-files',
  pending: 'after-files',
  sigmask: 'finish',
  sched: 'last',
  creds: 'last',
};

export { creds, checkCredsRestorable, type CredsState } from './creds.js';
export { fs, type FsState } from './fs.js';
export { futex, type FutexState } from './futex.js';
export { itimers, type ItimersState } from './itimers.js';
export { limits, type LimitsState } from './limits.js';
export { mempolicy, type MempolicyState } from './mempolicy.js';
export { misc, armParentDeathKill, restoreExecPolicy, restoreParentDeathSignal, type MiscState } from './misc.js';
export { pending, type PendingState } from './pending.js';
export { posixTimers, type PosixTimersState } from './posix-timers.js';
export { rseq, rseqSchema, type RseqState } from './rseq.js';
export { sched, type SchedState } from './sched.js';
export { seccomp, type SeccompState } from './seccomp.js';
export { sigactions, type SigactionsState } from './sigactions.js';
export { sigaltstack, type SigaltstackState } from './sigaltstack.js';
export { sigmask, finalSigmask, sigmaskOf, type SigmaskState } from './sigmask.js';
export { checkPrivilege, restorerPrivilege, type Privilege } from './privilege.js';
