/**
 * Semaphore undo adjustments (semop with SEM_UNDO). No interface shows a process's
 * semadj values, and killing the process applies them: the values just saved would
 * change under the restored program, which would itself have lost them. So the dump
 * refuses a process with any non-zero adjustment, naming it, the set and the semaphore.
 *
 * A process that never used SEM_UNDO and never made a thread has no undo list (kcmp
 * KCMP_SYSVSEM equal to ckpt's, which has none). Every other one is probed, for every
 * semaphore of every set of the namespace, by one semop injected in it (IPC_NOWAIT)
 * whose operations leave value and adjustment exactly as they were, but pass the
 * kernel's range check on the adjustment (-32768..32767) only if it is 0. The kernel
 * runs operations on one semaphore in a call one after another and undoes them all on
 * failure (perform_atomic_semop_slow), so a failed probe changes nothing either.
 * The probe updates only sempid and sem_otime (derived fields).
 */
import { z } from 'zod';
import { CkptError } from '../../common/errors.js';
import { IPC, kcmp, NR, semGetAll } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Resource } from '../types.js';
import { readIpcTable } from './table.js';

const SEM_UNDO = 0x1000;
const MAX = 32767;
const ERANGE = 34n;
const EAGAIN = 11n;

/**
 * With value v (taken to 0 first and given back last): +1 U, -1, +32767 U (adjustment
 * s-32768: fails if s < 0), -32767 U, +1, -1 U; then +32767, -32767 U (s+32767: fails
 * if s > 0), +32767 U, -32767. U = SEM_UNDO; every step keeps 0 <= value <= 32767.
 */
function probeOps(num: number, v: number): Buffer {
  const ops: [number, number][] = [
    [-v, 0], [1, SEM_UNDO], [-1, 0], [MAX, SEM_UNDO], [-MAX, SEM_UNDO], [1, 0], [-1, SEM_UNDO],
    [MAX, 0], [-MAX, SEM_UNDO], [MAX, SEM_UNDO], [-MAX, 0], [v, 0],
  ].filter(([op]) => op !== 0) as [number, number][];
  const b = Buffer.alloc(6 * ops.length);
  ops.forEach(([op, flags], i) => {
    b.writeUInt16LE(num, 6 * i);
    b.writeInt16LE(op, 6 * i + 2);
    b.writeInt16LE(flags | IPC.NOWAIT, 6 * i + 4);
  });
  return b;
}

/** -errno of the probe of semaphore `num` (0: its adjustment is 0). */
function probe(remote: RemoteTask, args: { semid: number; num: number; value: number }): bigint {
  const ops = probeOps(args.num, args.value);
  const addr = remote.put(ops);
  return remote.raw(NR.semtimedop, [args.semid, addr, ops.length / 6, 0], `semtimedop(${args.semid}, undo probe)`);
}

export function checkSemUndo(pid: number, remote: RemoteTask): void {
  if (kcmp({ type: 'SYSVSEM', pid1: pid, pid2: process.pid }) === 0) return;
  for (const row of readIpcTable('sem')) {
    const semid = row['semid']!;
    let values: number[];
    try {
      values = semGetAll(semid, row['nsems']!);
    } catch {
      continue; // removed since
    }
    for (const [num, first] of values.entries()) {
      let r = probe(remote, { semid, num, value: first });
      // The value changed under us (another process): read it again.
      for (let i = 0; i < 3 && r === -EAGAIN; i++) r = probe(remote, { semid, num, value: semGetAll(semid, values.length)[num]! });
      // Zero; the set is gone (EINVAL, EIDRM); or the process may not alter it (EACCES), so it has no adjustment
      // there unless the set's mode was changed after it made one.
      if (r === 0n || r === -22n || r === -43n || r === -13n) continue;
      const what = `semaphore ${num} of SysV set ${semid}`;
      if (r === -ERANGE) {
        throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: it has a SEM_UNDO adjustment on ${what}, which ckpt cannot restore (killing it would apply it)`);
      }
      const why = r === -EAGAIN ? 'its value changed during the check' : `the check failed with errno ${-r}`;
      throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: it has a SEM_UNDO list and ckpt cannot tell whether it holds an adjustment on ${what} (${why})`);
    }
  }
}

/**
 * Nothing is saved: a dumped process has no adjustment, the same as a new process's
 * empty list. Optional, so that image sets from before this module still restore.
 */
export const semUndo: Resource<Record<string, never> | undefined> = {
  name: 'semundo',
  schema: z.object({}).strict().optional() as unknown as z.ZodType<Record<string, never> | undefined>,
  dump(ctx) {
    checkSemUndo(ctx.pid, ctx.remote);
    return {};
  },
  restore() {},
};
