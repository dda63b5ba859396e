/**
 * timerfd files (`anon_inode:[timerfd]`). fdinfo gives the clock, the expirations not
 * read yet ("ticks"), the settime flags and the time left until the next expiry
 * (it_value, relative even for an absolute timer) with the interval. Restore creates
 * the timer in the restorer and arms it for the time that was left: the time the
 * process spent dumped does not count (an absolute timer is re-armed at now + left,
 * absolute, with its flags: fdinfo shows them, and a TFD_TIMER_CANCEL_ON_SET one is still
 * cancelled by a clock change). Unread
 * expirations are put back with TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE).
 */
import { readFdinfo } from '../../../proc/index.js';
import { clockGettime, TFD, timerfdCreate, timerfdSetTicks, timerfdSettime, type Timespec } from '../../../sys/anonfd.js';
import { closeFd } from '../../../sys/index.js';
import type { FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { EntryOf } from '../schema.js';
import { infoField } from './eventfd.js';
import { restoreError, type KindDumpContext, type KindRestoreContext, type LocalReopener } from './kind.js';

const NSEC = 1_000_000_000;

function decimal(v: string): number | undefined {
  return /^\d+$/.test(v) ? Number(v) : undefined;
}

/** "(2, 982162452)" */
function timespec(v: string): Timespec | undefined {
  const m = /^\((\d+), (\d+)\)$/.exec(v);
  return m ? { sec: Number(m[1]), nsec: Number(m[2]) } : undefined;
}

export function dumpTimerfd(_dc: KindDumpContext, f: FdFacts): EntryOf<'timerfd'> {
  const info = readFdinfo(f.pid, f.fd);
  const field = <T>(key: string, parse: (v: string) => T | undefined) => infoField(f, info, { key, parse });
  return {
    kind: 'timerfd',
    fd: f.fd,
    flags: f.flags,
    clockid: field('clockid', decimal),
    ticks: field('ticks', (v) => (/^\d+$/.test(v) ? BigInt(v) : undefined)),
    // "settime flags: 0%o"
    settime: field('settime flags', (v) => (/^[0-7]+$/.test(v) ? parseInt(v, 8) : undefined)),
    value: field('it_value', timespec),
    interval: field('it_interval', timespec),
  };
}

const isZero = (t: Timespec) => t.sec === 0 && t.nsec === 0;

function arm(fd: number, e: EntryOf<'timerfd'>): void {
  if (isZero(e.value)) {
    // Disarmed: only the interval and the flags (a CANCEL_ON_SET registration) matter.
    timerfdSettime(fd, { flags: e.settime, value: e.value, interval: e.interval });
    return;
  }
  if (e.settime & TFD.TIMER_ABSTIME) {
    // Absolute (and, on CLOCK_REALTIME, maybe cancelled on a clock change): at now + left, with its flags, which fdinfo shows.
    const now = clockGettime(e.clockid);
    const ns = now.nsec + e.value.nsec;
    const at = { sec: now.sec + e.value.sec + Math.floor(ns / NSEC), nsec: ns % NSEC };
    timerfdSettime(fd, { flags: e.settime, value: at, interval: e.interval });
    return;
  }
  timerfdSettime(fd, { flags: 0, value: e.value, interval: e.interval });
}

/** Puts back expirations that were not read yet (timerfd_settime has just cleared them). */
function restoreTicks(rc: KindRestoreContext, args: { fd: number; e: EntryOf<'timerfd'> }): void {
  const { fd, e } = args;
  try {
    timerfdSetTicks(fd, e.ticks);
  } catch (err) {
    // Without it (a kernel without CONFIG_CHECKPOINT_RESTORE) the count would be lost.
    throw restoreError(rc, { fd: e.fd, code: 'UNSUPPORTED', reason: `its ${e.ticks} unread timer expirations cannot be put back (TFD_IOC_SET_TICKS failed)`, cause: err });
  }
}

export const timerfdReopener: LocalReopener<'timerfd'> = {
  at: 'local',
  open(rc, e) {
    const fd = timerfdCreate(e.clockid, TFD.CLOEXEC | (e.flags & O.NONBLOCK ? TFD.NONBLOCK : 0));
    try {
      arm(fd, e);
      if (e.ticks > 0n) restoreTicks(rc, { fd, e });
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return fd;
  },
};
