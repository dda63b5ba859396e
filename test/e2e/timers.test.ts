/**
 * Timers through dump and restore (timerstate.c): ITIMER_REAL and POSIX timers of
 * several kinds (signal with a value, SIGEV_NONE, thread-directed, a CPU clock, a
 * deleted one leaving a gap in the ids). The victim checks them itself after restore.
 */
import { test } from 'node:test';
import { selfCheckRoundTrip } from '../helpers/self-check.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('ITIMER_REAL and POSIX timers keep their ids, values, signals and threads', () => selfCheckRoundTrip('timerstate', { checks: 9, cleanups }));

// A periodic timer that came due while the process was frozen: value 0, interval kept.
test('an ITIMER_REAL that came due with SIGALRM pending keeps its interval and fires again', () => selfCheckRoundTrip('itimer-due', { checks: 2, cleanups }));
