/**
 * get_robust_list(2) on another thread. Unlike most per-thread state, the kernel lets
 * a process with ptrace access read another thread's robust futex list head directly,
 * so no injection is needed at dump time.
 */
import { call } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

export interface RobustList {
  /** User address of the thread's struct robust_list_head (0 = none registered). */
  head: bigint;
  /** The length the thread registered (sizeof(struct robust_list_head) = 24 on x86_64). */
  len: bigint;
}

export function getRobustList(tid: number): RobustList {
  const head = Buffer.alloc(8);
  const len = Buffer.alloc(8);
  call(NR.get_robust_list, [tid, addressOf(head), addressOf(len)], { name: 'get_robust_list', pid: tid });
  return { head: head.readBigUInt64LE(0), len: len.readBigUInt64LE(0) };
}
