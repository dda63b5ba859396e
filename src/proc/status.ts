import { malformed, readProcText } from './procfs.js';

/** The parts of /proc/PID/status that ckpt uses; every field is also in `raw`. */
export interface ProcStatus {
  name: string;
  /** State letter: R, S, D, T, t, Z, X, I … */
  state: string;
  tgid: number;
  pid: number;
  ppid: number;
  tracerPid: number;
  /** [real, effective, saved, filesystem] */
  uid: [number, number, number, number];
  gid: [number, number, number, number];
  groups: number[];
  /** PIDs from the outermost to the innermost PID namespace (NSpid); [pid] if absent. */
  nsPid: number[];
  nsTgid: number[];
  nsPgid: number[];
  nsSid: number[];
  threads: number;
  /** Queued signals / RLIMIT_SIGPENDING ("SigQ: 0/96365"). */
  sigQ?: { queued: number; limit: number };
  sigPnd: bigint;
  shdPnd: bigint;
  sigBlk: bigint;
  sigIgn: bigint;
  sigCgt: bigint;
  capInh: bigint;
  capPrm: bigint;
  capEff: bigint;
  capBnd: bigint;
  capAmb: bigint;
  noNewPrivs: boolean;
  /** 0 disabled, 1 strict, 2 filter. */
  seccomp: number;
  /** Absent before Linux 4.7. */
  umask?: number;
  kthread: boolean;
  /** Every "Key:\tvalue" line, value trimmed. */
  raw: Record<string, string>;
}

const FILE = '/proc/PID/status';

function fieldsOf(text: string): Record<string, string> {
  const raw: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    raw[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return raw;
}

function numbers(value: string | undefined): number[] {
  if (value === undefined || value === '') return [];
  return value.split(/\s+/).map(Number);
}

function quad(raw: Record<string, string>, key: string): [number, number, number, number] {
  const v = numbers(raw[key]);
  if (v.length !== 4 || v.some(Number.isNaN)) throw malformed(FILE, `${key} is ${JSON.stringify(raw[key])}`);
  return [v[0] ?? 0, v[1] ?? 0, v[2] ?? 0, v[3] ?? 0];
}

function need(raw: Record<string, string>, key: string): string {
  const v = raw[key];
  if (v === undefined) throw malformed(FILE, `no ${key} field`);
  return v;
}

function int(raw: Record<string, string>, key: string): number {
  const n = Number(need(raw, key));
  if (!Number.isInteger(n)) throw malformed(FILE, `${key} is ${JSON.stringify(raw[key])}`);
  return n;
}

function mask(raw: Record<string, string>, key: string, fallback?: bigint): bigint {
  const v = raw[key];
  if (v === undefined && fallback !== undefined) return fallback;
  return BigInt(`0x${need(raw, key)}`);
}

function sigQ(value: string | undefined): ProcStatus['sigQ'] {
  const m = value === undefined ? null : /^(\d+)\/(\d+)$/.exec(value);
  return m === null ? undefined : { queued: Number(m[1]), limit: Number(m[2]) };
}

function isKthread(raw: Record<string, string>, state: string): boolean {
  if (raw['Kthread'] !== undefined) return raw['Kthread'] === '1';
  // Older kernels print no Kthread line; kernel threads are then the tasks with no
  // memory (no Vm* lines) that are not dead. stat's PF_KTHREAD flag is authoritative.
  return raw['VmSize'] === undefined && state !== 'Z' && state !== 'X';
}

export function parseStatus(text: string): ProcStatus {
  const raw = fieldsOf(text);
  const pid = int(raw, 'Pid');
  const state = need(raw, 'State').charAt(0);
  const umask = raw['Umask'];
  const nsPid = numbers(raw['NSpid']);
  return {
    name: need(raw, 'Name'),
    state,
    tgid: int(raw, 'Tgid'),
    pid,
    ppid: int(raw, 'PPid'),
    tracerPid: int(raw, 'TracerPid'),
    uid: quad(raw, 'Uid'),
    gid: quad(raw, 'Gid'),
    groups: numbers(raw['Groups']),
    nsPid: nsPid.length > 0 ? nsPid : [pid],
    nsTgid: numbers(raw['NStgid']),
    nsPgid: numbers(raw['NSpgid']),
    nsSid: numbers(raw['NSsid']),
    threads: int(raw, 'Threads'),
    sigQ: sigQ(raw['SigQ']),
    sigPnd: mask(raw, 'SigPnd'),
    shdPnd: mask(raw, 'ShdPnd'),
    sigBlk: mask(raw, 'SigBlk'),
    sigIgn: mask(raw, 'SigIgn'),
    sigCgt: mask(raw, 'SigCgt'),
    capInh: mask(raw, 'CapInh'),
    capPrm: mask(raw, 'CapPrm'),
    capEff: mask(raw, 'CapEff'),
    capBnd: mask(raw, 'CapBnd'),
    capAmb: mask(raw, 'CapAmb', 0n),
    noNewPrivs: raw['NoNewPrivs'] === '1',
    seccomp: Number(raw['Seccomp'] ?? '0'),
    umask: umask === undefined ? undefined : parseInt(umask, 8),
    kthread: isKthread(raw, state),
    raw,
  };
}

export function readStatus(pid: number): ProcStatus {
  return parseStatus(readProcText(pid, 'status'));
}

export function readTaskStatus(pid: number, tid: number): ProcStatus {
  return parseStatus(readProcText(pid, `task/${tid}/status`));
}
