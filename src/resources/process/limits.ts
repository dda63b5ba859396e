/**
 * Resource limits (RLIMIT_*), process-wide, read from /proc/PID/limits and restored
 * with an injected prlimit64(0, resource, &new, NULL).
 *
 * Raising a hard limit needs CAP_SYS_RESOURCE, which even root lacks on some machines
 * (these included). A limit the restorer cannot give back fails the restore, naming the
 * process and the limit: a lower limit is a different program (issue 10).
 *
 * Order: after memory, files and the threads and children are rebuilt, since a
 * lowered RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_AS or RLIMIT_MEMLOCK would forbid the
 * restore's own work; before creds.
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { CkptError } from '../../common/errors.js';
import { readLimits, RLIM_INFINITY } from '../../proc/index.js';
import { errnoName, NR, SysError } from '../../sys/index.js';
import type { Resource } from '../types.js';

const EPERM = 1n;

export interface Rlimit {
  /** RLIMIT_* number. */
  resource: number;
  /** As /proc prints it, for messages. */
  name: string;
  soft: bigint;
  hard: bigint;
}

export interface LimitsState {
  limits: Rlimit[];
}

export const limitsSchema: z.ZodType<LimitsState> = z.object({
  limits: z.array(z.object({ resource: z.number().int().min(0), name: z.string(), soft: zBig, hard: zBig })),
});

function encodeRlimit(soft: bigint, hard: bigint): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64LE(BigInt.asUintN(64, soft), 0);
  b.writeBigUInt64LE(BigInt.asUintN(64, hard), 8);
  return b;
}

function show(v: bigint): string {
  return v === RLIM_INFINITY ? 'unlimited' : String(v);
}

/** Why limit `l` could not be set (prlimit64 failed with -r): EPERM is a hard limit above ours. */
function limitError(pid: number, l: Rlimit, r: bigint): CkptError {
  const what = `Cannot restore the limit ${l.name} (resource ${l.resource}) of process ${pid} (soft ${show(l.soft)}, hard ${show(l.hard)})`;
  if (r === -EPERM) return new CkptError('PERMISSION', `${what}: raising a hard limit above the restorer's needs CAP_SYS_RESOURCE, which it lacks`);
  return new CkptError('UNSUPPORTED', `${what}: prlimit64 failed with ${errnoName(Number(-r))}`);
}

export const limits: Resource<LimitsState> = {
  name: 'limits',
  schema: limitsSchema,
  dump(ctx) {
    const rows = readLimits(ctx.pid).filter((l) => l.resource >= 0);
    return { limits: rows.map((l) => ({ resource: l.resource, name: l.name, soft: l.soft, hard: l.hard })) };
  },
  restore(ctx, state) {
    // All in one batch (one stop instead of two per limit); if any fails, the batch
    // stops there and the failed limit is named.
    try {
      ctx.remote.batch(() => {
        for (const l of state.limits) ctx.remote.call(NR.prlimit64, [0, l.resource, ctx.remote.put(encodeRlimit(l.soft, l.hard)), 0], `prlimit64 ${l.resource}`);
      });
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      const failed = state.limits.find((l) => e.syscall.startsWith(`prlimit64 ${l.resource} `)) ?? state.limits[0]!;
      throw limitError(ctx.pid, failed, -BigInt(e.errno));
    }
  },
};
