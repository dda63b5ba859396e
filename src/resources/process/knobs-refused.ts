/**
 * Per-thread prctl/arch_prctl states that ckpt does not save: speculation control
 * (store bypass, indirect branch, L1D flush), the machine-check kill policy, the TSC
 * and CPUID faulting modes. A restored thread starts with the restorer's (a fork of
 * ckpt), so a thread whose value differs from ckpt's own is refused at dump, naming
 * the knob; equal values come back as they were.
 *
 * A Landlock domain (landlock_restrict_self, per thread) is shown by no interface and
 * cannot be built again: a restored thread would run outside its sandbox. It is found
 * by what it forbids: a thread in a domain may not ptrace-access a process outside it.
 * The thread is asked to kcmp() itself with a reference process that every other check
 * of that access lets it reach, so that EPERM can only be a domain (or another security
 * module's confinement): ckpt itself for a thread holding CAP_SYS_PTRACE; else a
 * `sleep` that ckpt starts (through setpriv) with the thread's real uid and gid, no
 * groups, no capabilities and dumpable, killed after the probe.
 */
import { CkptError } from '../../common/errors.js';
import { readStat, readTaskStat, readTaskStatus, type ProcStatus } from '../../proc/index.js';
import { addressOf, collectExit, isErrno, kill, NR, ptrace, rawSyscall, SIG, spawnQuiet } from '../../sys/index.js';
import { existsSync, readFileSync } from 'node:fs';
import { sleepSync, type RemoteTask } from '../../infect/index.js';
import { callOut } from './inject.js';

const PR_GET_SPECULATION_CTRL = 52;
const PR_MCE_KILL_GET = 34;
const PR_GET_TSC = 25;
const ARCH_GET_CPUID = 0x1011;

interface Knob {
  what: string;
  /** The value in a thread, read by injection; undefined where the kernel has no such knob. */
  remote: (r: RemoteTask) => bigint | undefined;
  /** The same in ckpt's own thread. */
  local: () => bigint | undefined;
}

const ok = (r: bigint) => (r < 0n && r > -4096n ? undefined : r);
const localRet = (nr: number, args: (number | bigint)[]) => {
  const r = rawSyscall(nr, args);
  return r.ret === -1n ? undefined : r.ret;
};

const spec = (which: number, what: string): Knob => ({
  what: `speculation control (${what})`,
  remote: (r) => ok(r.raw(NR.prctl, [PR_GET_SPECULATION_CTRL, which, 0, 0, 0], 'prctl(PR_GET_SPECULATION_CTRL)')),
  local: () => localRet(NR.prctl, [PR_GET_SPECULATION_CTRL, which, 0, 0, 0]),
});

const KNOBS: Knob[] = [
  spec(0, 'store bypass'),
  spec(1, 'indirect branch'),
  spec(2, 'L1D flush'),
  {
    what: 'machine-check kill policy (PR_MCE_KILL)',
    remote: (r) => ok(r.raw(NR.prctl, [PR_MCE_KILL_GET, 0, 0, 0, 0], 'prctl(PR_MCE_KILL_GET)')),
    local: () => localRet(NR.prctl, [PR_MCE_KILL_GET, 0, 0, 0, 0]),
  },
  {
    what: 'TSC mode (PR_SET_TSC)',
    remote: (r) => {
      try {
        return BigInt(callOut(r, { nr: NR.prctl, name: 'prctl(PR_GET_TSC)', size: 4, args: (addr) => [PR_GET_TSC, addr] }).readInt32LE(0));
      } catch {
        return undefined;
      }
    },
    local: () => {
      const b = Buffer.alloc(4);
      return localRet(NR.prctl, [PR_GET_TSC, addressOf(b)]) === undefined ? undefined : BigInt(b.readInt32LE(0));
    },
  },
  {
    what: 'CPUID faulting (ARCH_SET_CPUID)',
    remote: (r) => ok(r.raw(NR.arch_prctl, [ARCH_GET_CPUID, 0], 'arch_prctl(ARCH_GET_CPUID)')),
    local: () => localRet(NR.arch_prctl, [ARCH_GET_CPUID, 0]),
  },
];

let ours: (bigint | undefined)[] | undefined;

/** Throws UNSUPPORTED for the first knob of thread `tid` that differs from ckpt's. */
export function refuseUnsavedKnobs(remote: RemoteTask, ids: { pid: number; tid: number }): void {
  ours ??= KNOBS.map((k) => k.local());
  KNOBS.forEach((k, i) => {
    const mine = ours![i];
    if (mine === undefined) return;
    const theirs = k.remote(remote);
    if (theirs !== undefined && theirs !== mine) {
      throw new CkptError('UNSUPPORTED', `Cannot dump thread ${ids.tid} of process ${ids.pid}: its ${k.what} is ${theirs} (ckpt's is ${mine}), which is not saved`);
    }
  });
}

const KCMP_VM = 0;
const EPERM = -1n;
const ESRCH = -3n;
const CAP_SYS_PTRACE = 19n;

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv', '/sbin/setpriv'];
const SLEEP = ['/usr/bin/sleep', '/bin/sleep'];

/**
 * A process that thread `st` may ptrace-read by every check but a security module's: its
 * real uid and gid as the thread's effective, saved and real ones (the check compares the
 * caller's real ids with all three), no capabilities (uid 0 would keep them through an
 * exec: setpriv clears the bounding set too), and dumpable (the exec after the id change
 * makes it so). Started with posix_spawn (a fork of ckpt costs tens of ms). Undefined if
 * setpriv is missing or sleep never starts.
 */
function startReference(st: ProcStatus): { pid: number; stop(): void } | undefined {
  // sleep is bounded: a ckpt killed before stop() leaves it for a minute at most.
  let pid: number;
  if (process.getuid?.() !== 0) {
    // An unprivileged ckpt can change neither ids nor groups (setpriv --clear-groups needs
    // CAP_SETGID), and needs neither: its own ids are the thread's (or it could not have
    // seized it), it has no capabilities after the exec, and the check ignores groups.
    const sleep = SLEEP.find((p) => existsSync(p));
    if (!sleep || process.getuid?.() !== st.uid[0] || process.getgid?.() !== st.gid[0]) return undefined;
    pid = spawnQuiet(sleep, ['sleep', '60']);
  } else {
    const setpriv = SETPRIV.find((p) => existsSync(p));
    if (!setpriv) return undefined;
    const ids = ['--reuid', String(st.uid[0]), '--regid', String(st.gid[0]), '--clear-groups', '--inh-caps=-all', '--bounding-set=-all'];
    pid = spawnQuiet(setpriv, ['setpriv', ...ids, '--', 'sleep', '60']);
  }
  const stop = () => {
    kill(pid, SIG.SIGKILL);
    collectExit(pid);
  };
  // The ids and dumpable are final once setpriv has run sleep.
  for (let i = 0; i < 2000; i++) {
    const st = statOf(pid);
    const comm = st?.comm;
    if (comm === 'sleep') return { pid, stop };
    if (st === undefined || st.state === 'Z') break;
    sleepSync(0.2);
  }
  stop();
  return undefined;
}

/** The process's stat (its comm and state), undefined once it is gone. */
function statOf(pid: number): { comm: string; state: string } | undefined {
  try {
    return readStat(pid);
  } catch {
    return undefined;
  }
}

/** A security module's label in `path` (NULs and newline trimmed), undefined where none answers. */
function securityLabel(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').replace(/\0/g, '').trim();
  } catch {
    return undefined;
  }
}

/** PF_MEMALLOC_NOIO | PF_LOCAL_THROTTLE: what PR_SET_IO_FLUSHER sets (reading it back needs CAP_SYS_RESOURCE). */
const PF_IO_FLUSHER = 0x00080000 | 0x00100000;
const NO_UNTAG = 0xffffffffffffffffn;
const PR_SCHED_CORE = 62;
const PR_SCHED_CORE_GET = 0;

/**
 * Thread states that /proc shows and ckpt does not save, refused without injecting
 * anything: an I/O flusher (PR_SET_IO_FLUSHER: stat flags), x86 linear address masking
 * (status `untag_mask` other than all ones: ARCH_ENABLE_TAGGED_ADDR) and user shadow
 * stacks (status `x86_Thread_features` not empty: ARCH_SHSTK_ENABLE); a core
 * scheduling cookie (PR_SCHED_CORE, which ckpt reads for another task itself); and a
 * security module's label (attr/current) other than ckpt's, or a label set for its
 * next exec, files, keys or sockets (attr/exec…): a restored thread would run with
 * ckpt's (an AppArmor profile or SELinux domain lost). Without such a module every
 * attr file answers EINVAL.
 */
export function refuseUnsavedTaskState(ids: { pid: number; tid: number }): ProcStatus {
  const refuse = (what: string) => {
    throw new CkptError('UNSUPPORTED', `Cannot dump thread ${ids.tid} of process ${ids.pid}: ${what}, which is not saved`);
  };
  if ((readTaskStat(ids.pid, ids.tid).flags & PF_IO_FLUSHER) !== 0) refuse('it is an I/O flusher (PR_SET_IO_FLUSHER)');
  const status = readTaskStatus(ids.pid, ids.tid);
  const untag = status.raw['untag_mask'];
  if (untag !== undefined && BigInt(untag) !== NO_UNTAG) refuse(`it uses linear address masking (untag_mask ${untag})`);
  const features = status.raw['x86_Thread_features'];
  if (features !== undefined && features !== '') refuse(`it has x86 thread features on (${features}: shadow stack)`);
  // Without a security module attr/current answers EINVAL, and so do the others.
  const theirs = securityLabel(`/proc/${ids.pid}/task/${ids.tid}/attr/current`);
  if (theirs !== undefined) {
    const ours = securityLabel('/proc/thread-self/attr/current');
    if (theirs !== ours) refuse(`its security label is ${theirs} (ckpt's ${ours ?? 'none'})`);
    for (const f of ['exec', 'fscreate', 'keycreate', 'sockcreate']) {
      const label = securityLabel(`/proc/${ids.pid}/task/${ids.tid}/attr/${f}`);
      if (label) refuse(`it has a security label set for later (attr/${f} ${label})`);
    }
  }
  if (schedCore) {
    const cookie = Buffer.alloc(8);
    const r = rawSyscall(NR.prctl, [PR_SCHED_CORE, PR_SCHED_CORE_GET, ids.tid, 0 /* PIDTYPE_PID */, addressOf(cookie)]);
    // EINVAL without CONFIG_SCHED_CORE: no cookie on this kernel, not asked again.
    if (r.ret === -1n && r.errno === EINVAL) schedCore = false;
    else if (r.ret === 0n && cookie.readBigUInt64LE(0) !== 0n) refuse('it has a core scheduling cookie (PR_SCHED_CORE)');
  }
  return status;
}

let schedCore = true;
const EINVAL = 22;

/** Reference processes by "uid gid", kept for the dump's other threads and processes (~16 ms each to start here). */
const references = new Map<string, { pid: number; stop(): void } | undefined>();

/** Ends the reference processes the probes started; the dump calls it as it ends. */
export function releaseSandboxProbes(): void {
  for (const ref of references.values()) ref?.stop();
  references.clear();
}

/** Throws UNSUPPORTED when thread `tid` is in a Landlock domain (see the file comment). */
export function refuseSandboxed(remote: RemoteTask, ids: { pid: number; tid: number; status?: ProcStatus }): void {
  const st = ids.status ?? readTaskStatus(ids.pid, ids.tid);
  const ptraceCap = (st.capEff & (1n << CAP_SYS_PTRACE)) !== 0n;
  const key = `${st.uid[0]} ${st.gid[0]}`;
  let r = ESRCH;
  // A reference kept past its sleep (a dump that did not end through dump()) is started again.
  for (let tries = 0; r === ESRCH && tries < 2; tries++) {
    if (!ptraceCap && tries > 0) references.get(key)?.stop();
    if (!ptraceCap && (tries > 0 || !references.has(key))) references.set(key, startReference(st));
    const ref = ptraceCap ? process.pid : references.get(key)?.pid;
    if (ref === undefined) throw new CkptError('UNSUPPORTED', `Cannot dump thread ${ids.tid} of process ${ids.pid}: cannot tell whether it is in a Landlock domain (no reference process with its ids could be started: setpriv (util-linux) and sleep are needed)`);
    r = remote.raw(NR.kcmp, [ids.pid, ref, KCMP_VM, 0, 0], 'kcmp(reference)');
  }
  if (r !== EPERM) return;
  const against = ptraceCap ? 'ckpt with CAP_SYS_PTRACE' : `a process with its own uid ${st.uid[0]} and gid ${st.gid[0]}`;
  throw new CkptError('UNSUPPORTED', `Cannot dump thread ${ids.tid} of process ${ids.pid}: it is in a Landlock domain (or another security module's confinement): it may not access ${against}, and its sandbox is not saved`);
}

/**
 * Syscall user dispatch (PR_SET_SYSCALL_USER_DISPATCH: Wine) is not saved: a restored
 * thread would run natively the syscalls it had dispatched to its SIGSYS handler. Checked
 * with PTRACE_GET_SYSCALL_USER_DISPATCH_CONFIG before anything is injected, since with the
 * selector at BLOCK an injected syscall would raise SIGSYS in the thread instead.
 */
export function refuseSyscallDispatch(ids: { pid: number; tid: number }): void {
  let mode: bigint;
  try {
    mode = ptrace.getSyscallUserDispatch(ids.tid).mode;
  } catch (e) {
    if (isErrno(e, 'EIO') || isErrno(e, 'EINVAL')) return; // a kernel before 6.4
    throw e;
  }
  if (mode !== 0n) {
    throw new CkptError('UNSUPPORTED', `Cannot dump thread ${ids.tid} of process ${ids.pid}: it has syscall user dispatch on (PR_SET_SYSCALL_USER_DISPATCH), which is not saved`);
  }
}
