/**
 * The futex-related pointers of one thread: clear_child_tid (set_tid_address; the
 * kernel zeroes it and wakes a futex there when the thread exits, which is how
 * pthread_join learns of the exit) and the robust futex list head (set_robust_list;
 * the kernel releases the robust mutexes on that list when the thread dies).
 *
 * Both are plain user addresses, so the order does not matter for the kernel; they
 * only become meaningful once memory is restored.
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { NR, PR } from '../../sys/index.js';
import { getRobustList } from '../../sys/robust-list.js';
import type { Resource } from '../types.js';
import { callOut } from './inject.js';

export interface FutexState {
  tid: number;
  clearChildTid: bigint;
  robustList: { head: bigint; len: bigint };
}

export const futexSchema: z.ZodType<FutexState> = z.object({
  tid: z.number().int().positive(),
  clearChildTid: zBig,
  robustList: z.object({ head: zBig, len: zBig }),
});

export const futex: Resource<FutexState> = {
  name: 'futex',
  schema: futexSchema,
  dump(ctx) {
    const tid = ctx.remote.tid;
    // PR_GET_TID_ADDRESS answers for the calling thread only: it must be injected.
    const b = callOut(ctx.remote, { nr: NR.prctl, name: 'prctl(PR_GET_TID_ADDRESS)', size: 8, args: (addr) => [PR.GET_TID_ADDRESS, addr] });
    return { tid, clearChildTid: b.readBigUInt64LE(0), robustList: getRobustList(tid) };
  },
  restore(ctx, s) {
    ctx.remote.call(NR.set_tid_address, [s.clearChildTid], 'set_tid_address');
    ctx.remote.call(NR.set_robust_list, [s.robustList.head, s.robustList.len], 'set_robust_list');
  },
};
