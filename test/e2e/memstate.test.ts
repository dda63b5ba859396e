/**
 * Memory-area state through dump and restore (memstate.c): the victim sets each
 * feature up, waits for SIGUSR1 and then checks it itself (PASS/FAIL lines).
 */
import { test } from 'node:test';
import { selfCheckRoundTrip } from '../helpers/self-check.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

const roundTrip = (features: string[], checks: number) => selfCheckRoundTrip('memstate', { args: features, checks, cleanups });

test('a 2 TiB MAP_NORESERVE area with three pages written comes back with those pages', () => roundTrip(['sparse'], 5));

test('mlock()ed, MAP_LOCKED and MLOCK_ONFAULT areas come back locked, also after the process dropped root', () =>
  roundTrip(['mlock', 'setuid'], 6));

test('mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT) locks the old areas and new ones after restore', () => roundTrip(['mlockall'], 2));

test('mlockall(MCL_FUTURE) alone locks only the areas mapped after restore', () => roundTrip(['future'], 2));

test('mlockall(MCL_FUTURE) with nothing mapped since the call (no area locked at the dump) still locks new areas after restore', () =>
  roundTrip(['futurebare'], 2));

test('an mlock()ed stack without MCL_FUTURE does not make new areas locked after restore', () => roundTrip(['stacklock'], 2));

test('pages written through /proc/self/mem into never-writable areas come back uncharged; an emptied area made PROT_NONE stays charged', () =>
  roundTrip(['unaccounted'], 4));

test('a read-only shared mapping of a file opened O_RDWR can still be made writable after restore', () => roundTrip(['mapfile'], 4));

// 10,000 areas with CKPT_TEST_LONG=1 (about 4x the time).
const MANY = process.env['CKPT_TEST_LONG'] === '1' ? 10000 : 3000;
test(`a process with ${MANY} small mappings comes back with every one of them`, () =>
  selfCheckRoundTrip('manymaps', { args: [String(MANY)], checks: 3, cleanups }));
