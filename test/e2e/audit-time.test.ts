/**
 * Time state probed as a new user would (audittime.c): threads dumped inside nanosleep,
 * an absolute clock_nanosleep, select and a futex wait with a timeout come back into
 * their calls and return as they would have (no EINTR, never early); POSIX timers on
 * CLOCK_BOOTTIME, the CPU-time clocks and an absolute CLOCK_REALTIME timer keep their
 * clock, time left and interval.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { restoreAndCheck, selfCheckRoundTrip } from '../helpers/self-check.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, waitGone } from '../helpers/victim.js';

const cleanups = useCleanups();

test('threads in nanosleep, clock_nanosleep(TIMER_ABSTIME), select and a timed futex wait return as they would have', async () => {
  const v = startVictim('audittime', { args: ['nanosleep', 'absleep', 'select', 'futex'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+|SETUP FAIL.*/);
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  const dir = cleanups.tempDir('ckpt-audittime-');
  dump(v.pid, { imagesDir: dir });
  // None had returned before the dump: each was inside its call.
  assert.doesNotMatch(v.output(), /returns/, v.output());
  await waitGone(v.pid);
  await restoreAndCheck(v, { dir, checks: 4, cleanups });
});

test('POSIX timers on CLOCK_BOOTTIME, the CPU-time clocks and an absolute CLOCK_REALTIME timer', () =>
  selfCheckRoundTrip('audittime', { args: ['timers'], checks: 4, cleanups }));
