import { malformed, readProcText } from './procfs.js';

/** /proc/PID/stat (see proc_pid_stat(5)); addresses and 64-bit quantities are bigint. */
export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
  ttyNr: number;
  tpgid: number;
  /** PF_* task flags. */
  flags: number;
  minflt: number;
  cminflt: number;
  majflt: number;
  cmajflt: number;
  utime: number;
  stime: number;
  cutime: number;
  cstime: number;
  priority: number;
  nice: number;
  numThreads: number;
  /** Clock ticks since boot. */
  startTime: bigint;
  vsize: bigint;
  /** Resident pages. */
  rss: bigint;
  rsslim: bigint;
  startCode: bigint;
  endCode: bigint;
  startStack: bigint;
  exitSignal: number;
  processor: number;
  rtPriority: number;
  policy: number;
  startData: bigint;
  endData: bigint;
  startBrk: bigint;
  argStart: bigint;
  argEnd: bigint;
  envStart: bigint;
  envEnd: bigint;
  exitCode: number;
}

export const PF_KTHREAD = 0x00200000;

/** Kernel threads have no user memory and cannot be checkpointed. */
export function isKernelThread(stat: Pick<ProcStat, 'flags'>): boolean {
  return (stat.flags & PF_KTHREAD) !== 0;
}

// Fields 3 (state) to 52 (exit_code) of proc_pid_stat(5) follow "comm)".
const AFTER_COMM = 52 - 2;

export function parseStat(text: string): ProcStat {
  const open = text.indexOf(' (');
  // comm may itself contain ") (" or spaces: only the last ')' closes it.
  const close = text.lastIndexOf(')');
  if (open <= 0 || close < open) throw malformed('/proc/PID/stat', `no "(comm)" in ${JSON.stringify(text)}`);
  const f = text.slice(close + 2).trimEnd().split(' ');
  if (f.length < AFTER_COMM) {
    throw malformed('/proc/PID/stat', `${f.length + 2} fields, expected at least 52 (kernel older than 3.5?)`);
  }
  // f[i] is field i+3 of proc_pid_stat(5).
  const n = (field: number): number => Number(f[field - 3]);
  const b = (field: number): bigint => BigInt(f[field - 3] ?? '0');
  return {
    pid: Number(text.slice(0, open)),
    comm: text.slice(open + 2, close),
    state: f[0] ?? '',
    ppid: n(4),
    pgrp: n(5),
    session: n(6),
    ttyNr: n(7),
    tpgid: n(8),
    flags: n(9),
    minflt: n(10),
    cminflt: n(11),
    majflt: n(12),
    cmajflt: n(13),
    utime: n(14),
    stime: n(15),
    cutime: n(16),
    cstime: n(17),
    priority: n(18),
    nice: n(19),
    numThreads: n(20),
    startTime: b(22),
    vsize: b(23),
    rss: b(24),
    rsslim: b(25),
    startCode: b(26),
    endCode: b(27),
    startStack: b(28),
    exitSignal: n(38),
    processor: n(39),
    rtPriority: n(40),
    policy: n(41),
    startData: b(45),
    endData: b(46),
    startBrk: b(47),
    argStart: b(48),
    argEnd: b(49),
    envStart: b(50),
    envEnd: b(51),
    exitCode: n(52),
  };
}

export function readStat(pid: number): ProcStat {
  return parseStat(readProcText(pid, 'stat'));
}

export function readTaskStat(pid: number, tid: number): ProcStat {
  return parseStat(readProcText(pid, `task/${tid}/stat`));
}
