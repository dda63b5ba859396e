/** Signals and small process-level calls made by ckpt itself. */
import { call, callNum } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

export const SIG = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9,
  SIGUSR1: 10, SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGSTKFLT: 16, SIGCHLD: 17,
  SIGCONT: 18, SIGSTOP: 19, SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22, SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25,
  SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28, SIGIO: 29, SIGPWR: 30, SIGSYS: 31,
} as const;

export function kill(pid: number, sig: number): void {
  call(NR.kill, [pid, sig], { name: `kill(${sig})`, pid });
}

export function tgkill(tgid: number, tid: number, sig: number): void {
  call(NR.tgkill, [tgid, tid, sig], { name: `tgkill(${sig})`, pid: tid });
}

export const PR = {
  SET_PDEATHSIG: 1,
  GET_PDEATHSIG: 2,
  GET_DUMPABLE: 3,
  SET_DUMPABLE: 4,
  GET_KEEPCAPS: 7,
  SET_KEEPCAPS: 8,
  SET_NAME: 15,
  GET_NAME: 16,
  GET_SECCOMP: 21,
  CAPBSET_READ: 23,
  GET_TIMERSLACK: 30,
  SET_TIMERSLACK: 29,
  SET_MM: 35,
  SET_CHILD_SUBREAPER: 36,
  GET_CHILD_SUBREAPER: 37,
  SET_NO_NEW_PRIVS: 38,
  GET_NO_NEW_PRIVS: 39,
  GET_TID_ADDRESS: 40,
  SET_THP_DISABLE: 41,
  GET_THP_DISABLE: 42,
  CAP_AMBIENT: 47,
  SET_MDWE: 65,
  GET_MDWE: 66,
} as const;

export const PR_SET_MM = { MAP: 14, MAP_SIZE: 15 } as const;

/** prctl in this process (for probes and for becoming a child subreaper). */
export function prctl(option: number, args: readonly (number | bigint)[] = []): bigint {
  return call(NR.prctl, [option, ...args], { name: `prctl(${option})` });
}

export function setChildSubreaper(on: boolean): void {
  prctl(PR.SET_CHILD_SUBREAPER, [on ? 1 : 0]);
}

export function getpid(): number {
  return callNum(NR.getpid, [], { name: 'getpid' });
}

export function closeFd(fd: number): void {
  call(NR.close, [fd], { name: `close(${fd})` });
}

/** tee(2): copies up to len bytes from pipe fdIn to pipe fdOut without consuming them. */
export function tee(fdIn: number, fdOut: number, len: number): number {
  return callNum(NR.tee, [fdIn, fdOut, len, 0x2 /* SPLICE_F_NONBLOCK */], { name: 'tee' });
}

export function pipe2(flags = 0): [number, number] {
  const fds = Buffer.alloc(8);
  call(NR.pipe2, [addressOf(fds), flags], { name: 'pipe2' });
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}
