/**
 * Scheduling and per-process knobs through dump and restore (schedstate.c): per-thread
 * policy, priority, nice, SCHED_RESET_ON_FORK and affinity; oom_score_adj and
 * coredump_filter. The victim checks them itself after restore.
 */
import { test } from 'node:test';
import { selfCheckRoundTrip } from '../helpers/self-check.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('scheduling policy, nice, affinity, oom_score_adj and coredump_filter survive dump and restore', () =>
  selfCheckRoundTrip('schedstate', { checks: 7, cleanups }));
