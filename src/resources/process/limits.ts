/**
 * Resource limits (RLIMIT_*), process-wide, read from /proc/PID/limits and restored
 * with an injected prlimit64(0, resource, &new, NULL).
 *
 * Raising a hard limit needs CAP_SYS_RESOURCE, which even root lacks on some machines
 * (these included). That is no reason to fail a restore: the limit is set as close as
 * the kernel allows (the current hard limit, soft capped to it) and a warning says so.
 *
 * Order: after memory, files and the threads and children are rebuilt, since a
 * lowered RLIMIT_NOFILE, RLIMIT_NPROC, RLIMIT_AS or RLIMIT_MEMLOCK would forbid the
 * restore's own work; before creds.
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { readLimits, RLIM_INFINITY } from '../../proc/index.js';
import { errnoName, NR, SysError, type Arg } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Resource, RestoreContext } from '../types.js';

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

/** prlimit64 on the target itself; the raw result (-errno on failure). */
function setLimit(remote: RemoteTask, l: { resource: number; soft: bigint; hard: bigint }): bigint {
  const addr = remote.scratch(16);
  remote.write(addr, encodeRlimit(l.soft, l.hard));
  const args: Arg[] = [0, l.resource, addr, 0];
  return remote.raw(NR.prlimit64, args);
}

function show(v: bigint): string {
  return v === RLIM_INFINITY ? 'unlimited' : String(v);
}

function restoreOne(ctx: RestoreContext, l: Rlimit): void {
  const r = setLimit(ctx.remote, l);
  if (r >= 0n) return;
  const what = `${l.name} (resource ${l.resource}) of process ${ctx.pid}`;
  if (r !== -EPERM) {
    ctx.warn(`Cannot restore the limit ${what}: prlimit64 failed with ${errnoName(Number(-r))}; it keeps its current value`);
    return;
  }
  // EPERM: the hard limit would go up. Keep the current hard limit and cap the soft one to it.
  const hard = readLimits(ctx.pid).find((c) => c.resource === l.resource)?.hard;
  const soft = hard === undefined || l.soft <= hard ? l.soft : hard;
  const fallback = hard === undefined ? -EPERM : setLimit(ctx.remote, { resource: l.resource, soft, hard });
  const kept = hard === undefined ? 'its current limits' : `soft ${show(soft)}, hard ${show(hard)}`;
  ctx.warn(
    `Cannot restore the hard limit ${what} to ${show(l.hard)}: raising a hard limit needs CAP_SYS_RESOURCE, ` +
      `which the restorer lacks; ${fallback >= 0n ? `set to ${kept}` : 'kept its current limits'}`,
  );
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
    // stops there and each is set again on its own, with the fallbacks above.
    try {
      ctx.remote.batch(() => {
        for (const l of state.limits) ctx.remote.call(NR.prlimit64, [0, l.resource, ctx.remote.put(encodeRlimit(l.soft, l.hard)), 0], 'prlimit64');
      });
    } catch (e) {
      if (!(e instanceof SysError)) throw e;
      for (const l of state.limits) restoreOne(ctx, l);
    }
  },
};
