import { malformed, readProcText } from './procfs.js';

/** One row of /proc/PID/limits. */
export interface Limit {
  /** As printed, e.g. 'Max open files'. */
  name: string;
  /** RLIMIT_* number for prlimit(2); -1 for a row this table does not know. */
  resource: number;
  soft: bigint;
  hard: bigint;
  /** 'seconds', 'bytes', 'files' …, '' where the kernel prints none. */
  units: string;
}

export const RLIM_INFINITY = 0xffffffffffffffffn;

// Row names in RLIMIT_* order (include/uapi/asm-generic/resource.h).
const NAMES = [
  'Max cpu time', 'Max file size', 'Max data size', 'Max stack size', 'Max core file size',
  'Max resident set', 'Max processes', 'Max open files', 'Max locked memory', 'Max address space',
  'Max file locks', 'Max pending signals', 'Max msgqueue size', 'Max nice priority',
  'Max realtime priority', 'Max realtime timeout',
];

function value(s: string): bigint {
  return s === 'unlimited' ? RLIM_INFINITY : BigInt(s);
}

function splitName(line: string): { name: string; rest: string } | undefined {
  const known = NAMES.find((n) => line.startsWith(`${n} `));
  if (known !== undefined) return { name: known, rest: line.slice(known.length) };
  // An unknown row: its name is padded to a column, so it ends at the first double space.
  const m = /^(.+?)\s{2,}(.*)$/.exec(line);
  return m === null ? undefined : { name: m[1] ?? '', rest: m[2] ?? '' };
}

export function parseLimits(text: string): Limit[] {
  const out: Limit[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('Limit ')) continue;
    const split = splitName(line);
    const [soft, hard, units = ''] = split?.rest.trim().split(/\s+/) ?? [];
    if (split === undefined || soft === undefined || hard === undefined) {
      throw malformed('/proc/PID/limits', `unexpected line ${JSON.stringify(line)}`);
    }
    out.push({ name: split.name, resource: NAMES.indexOf(split.name), soft: value(soft), hard: value(hard), units });
  }
  return out;
}

export function readLimits(pid: number): Limit[] {
  return parseLimits(readProcText(pid, 'limits'));
}
