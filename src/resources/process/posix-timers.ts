/**
 * POSIX timers (timer_create): listed by /proc/PID/timers (id, signal, sigev_value,
 * notification and its target thread, clock); time left, interval and the overrun of
 * the last signal read with injected timer_gettime / timer_getoverrun.
 *
 * Restored with the same ids: prctl(PR_TIMER_CREATE_RESTORE_IDS) (Linux 6.15) makes
 * timer_create take the id from *timerid. On an older kernel the restore fails, as a
 * timer with another id would make the program's timer_settime fail (EINVAL). Timers
 * are armed with the time left, as ITIMER_REAL is (time spent checkpointed does not
 * count), late, next to the interval timers.
 *
 * Refused at dump: a nonzero overrun of the last signal (timer_getoverrun), which
 * cannot be set again; CLOCK_THREAD_CPUTIME_ID in a process with several threads
 * (the timer belongs to the thread that created it, which /proc does not show).
 * A timer's signal that was pending at dump is saved with the pending signals.
 */
import { z } from 'zod';
import { CkptError } from '../../common/errors.js';
import { zBig } from '../../images/index.js';
import { readTimers } from '../../proc/index.js';
import { NR } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Resource } from '../types.js';
import { callIn, callsOut } from './inject.js';

const PR_TIMER_CREATE_RESTORE_IDS = 77;
const RESTORE_IDS = { OFF: 0, ON: 1, GET: 2 } as const;
const SIGEV = { signal: 0, none: 1, thread: 2, THREAD_ID: 4 } as const;
const CLOCK_THREAD_CPUTIME_ID = 3;
const NS = 1_000_000_000n;

const PosixTimer = z.object({
  id: z.number().int().min(0).max(0x7fffffff),
  clock: z.number().int(),
  signo: z.number().int().min(0).max(64),
  /** sigev_value (sival_ptr). */
  value: zBig,
  notify: z.enum(['signal', 'none', 'thread']),
  /** SIGEV_THREAD_ID: the thread the signal goes to. */
  tid: z.number().int().min(1).optional(),
  intervalNs: zBig,
  /** Time left (0 = disarmed). */
  valueNs: zBig,
});
export type PosixTimer = z.infer<typeof PosixTimer>;

/** Absent from images of ckpt before it saved timers: none. */
export const posixTimersSchema = z.object({ timers: z.array(PosixTimer).max(100_000) }).default({ timers: [] });
export type PosixTimersState = z.infer<typeof posixTimersSchema>;

/** struct itimerspec { timespec it_interval; timespec it_value; } */
function decodeItimerspec(b: Buffer): { intervalNs: bigint; valueNs: bigint } {
  return { intervalNs: b.readBigInt64LE(0) * NS + b.readBigInt64LE(8), valueNs: b.readBigInt64LE(16) * NS + b.readBigInt64LE(24) };
}

function encodeItimerspec(t: { intervalNs: bigint; valueNs: bigint }): Buffer {
  const b = Buffer.alloc(32);
  b.writeBigInt64LE(t.intervalNs / NS, 0);
  b.writeBigInt64LE(t.intervalNs % NS, 8);
  b.writeBigInt64LE(t.valueNs / NS, 16);
  b.writeBigInt64LE(t.valueNs % NS, 24);
  return b;
}

/** struct sigevent (64 bytes) followed by the timer_t the kernel reads the id from. */
function encodeCreate(t: PosixTimer): Buffer {
  const b = Buffer.alloc(72);
  b.writeBigUInt64LE(BigInt.asUintN(64, t.value), 0);
  b.writeInt32LE(t.signo, 8);
  b.writeInt32LE(SIGEV[t.notify] | (t.tid === undefined ? 0 : SIGEV.THREAD_ID), 12);
  b.writeInt32LE(t.tid ?? 0, 16);
  b.writeInt32LE(t.id, 64);
  return b;
}

function restoreIds(remote: RemoteTask, mode: number): bigint {
  return remote.raw(NR.prctl, [PR_TIMER_CREATE_RESTORE_IDS, mode, 0, 0, 0]);
}

function noRestoreIds(pid: number, doing: 'dump' | 'restore'): CkptError {
  return new CkptError('UNSUPPORTED', `Cannot ${doing} the POSIX timers of process ${pid}: this kernel cannot create timers with given ids (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.15)`);
}

export const posixTimers: Resource<PosixTimersState> = {
  name: 'posixTimers',
  schema: posixTimersSchema,
  dump(ctx) {
    const pid = ctx.pid;
    // /proc lists them in hash order: by id, so a dump reads the same whatever the order of creation.
    const listed = readTimers(pid).sort((a, b) => a.id - b.id);
    if (listed.length === 0) return { timers: [] };
    // A refusal only: restore --check (checking) reads a process whose timers were just made with their ids.
    if (!ctx.checking && restoreIds(ctx.remote, RESTORE_IDS.GET) < 0n) throw noRestoreIds(pid, 'dump');
    for (const p of listed) {
      if (p.clock === CLOCK_THREAD_CPUTIME_ID && ctx.proc.tids.length > 1) {
        throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: POSIX timer ${p.id} runs on CLOCK_THREAD_CPUTIME_ID of one of its ${ctx.proc.tids.length} threads, which /proc does not name`);
      }
    }
    // Every timer's time and overrun with one stop (callsOut).
    const got = callsOut(ctx.remote, listed.flatMap((p) => [
      { nr: NR.timer_gettime, name: `timer_gettime(${p.id})`, size: 32, args: (addr: bigint) => [p.id, addr] },
      { nr: NR.timer_getoverrun, name: `timer_getoverrun(${p.id})`, size: 0, args: () => [p.id] },
    ]));
    const timers = listed.map((p, i): PosixTimer => {
      const overrun = got[2 * i + 1]!.ret;
      if (overrun !== 0n) {
        throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: POSIX timer ${p.id} has an overrun count of ${overrun} from its last signal, which cannot be set again`);
      }
      const t: PosixTimer = { id: p.id, clock: p.clock, signo: p.signo, value: p.value, notify: p.notify, ...decodeItimerspec(got[2 * i]!.out) };
      if (p.toThread) t.tid = p.target;
      return t;
    });
    return { timers };
  },
  restore(ctx, s) {
    if (s.timers.length === 0) return;
    const r = ctx.remote;
    if (restoreIds(r, RESTORE_IDS.ON) < 0n) throw noRestoreIds(ctx.pid, 'restore');
    try {
      for (const t of s.timers) {
        const data = encodeCreate(t);
        const addr = r.scratch(data.length);
        r.write(addr, data);
        r.call(NR.timer_create, [t.clock, addr, addr + 64n], `timer_create(id ${t.id})`);
        const got = r.read(addr + 64n, 4).readInt32LE(0);
        if (got !== t.id) throw new CkptError('INTERNAL', `Cannot restore POSIX timer ${t.id} of process ${ctx.pid}: the kernel gave id ${got}`);
        if (t.valueNs !== 0n) {
          callIn(r, { nr: NR.timer_settime, name: `timer_settime(${t.id})`, data: encodeItimerspec(t), args: (a) => [t.id, 0, a, 0] });
        }
      }
    } finally {
      restoreIds(r, RESTORE_IDS.OFF);
    }
  },
};
