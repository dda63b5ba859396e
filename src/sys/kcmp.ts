/** kcmp(2): do two processes share a kernel object? The answer is ordered, so objects can be sorted. */
import { callNum } from './call.js';
import { NR } from './nr.js';

export const KCMP = { FILE: 0, VM: 1, FILES: 2, FS: 3, SIGHAND: 4, IO: 5, SYSVSEM: 6, EPOLL_TFD: 7 } as const;
export type KcmpType = keyof typeof KCMP;

/** -1, 0, 1: the kernel's order of the two objects (0 = the same object). */
export type KcmpOrder = -1 | 0 | 1;

export interface KcmpArgs {
  type: KcmpType;
  pid1: number;
  pid2: number;
  /** For FILE: the fds to compare. */
  idx1?: number;
  idx2?: number;
}

export function kcmp(a: KcmpArgs): KcmpOrder {
  const r = callNum(NR.kcmp, [a.pid1, a.pid2, KCMP[a.type], a.idx1 ?? 0, a.idx2 ?? 0], {
    name: `kcmp(KCMP_${a.type})`,
    pid: a.pid1,
  });
  // 0 equal, 1 less, 2 greater, 3 "not equal" (unordered; not returned for these types).
  if (r === 0) return 0;
  if (r === 1) return -1;
  if (r === 2) return 1;
  throw new RangeError(`kcmp(KCMP_${a.type}) returned unordered result ${r}`);
}
