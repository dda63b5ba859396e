/**
 * Memory-area state through dump and restore (memstate.c): the victim sets each
 * feature up, waits for SIGUSR1 and then checks it itself (PASS/FAIL lines).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

/** Starts memstate with `features`, dumps, restores, and returns the victim's check lines. */
async function roundTrip(features: string[], checks: number): Promise<void> {
  const v = startVictim('memstate', { args: features });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+|SETUP FAIL.*/);
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  const dir = cleanups.tempDir('ckpt-memstate-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  kill(r.pid, SIG.SIGUSR1);
  await rv.waitFor(/DONE fails=\d+/);
  const out = rv.output();
  assert.doesNotMatch(out, /FAIL/, out);
  assert.equal([...out.matchAll(/^PASS /gm)].length, checks, out);
}

test('a 2 TiB MAP_NORESERVE area with three pages written comes back with those pages', () => roundTrip(['sparse'], 5));

test('mlock()ed, MAP_LOCKED and MLOCK_ONFAULT areas come back locked, also after the process dropped root', () =>
  roundTrip(['mlock', 'setuid'], 6));

test('mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT) locks the old areas and new ones after restore', () => roundTrip(['mlockall'], 2));

test('a read-only shared mapping of a file opened O_RDWR can still be made writable after restore', () => roundTrip(['mapfile'], 4));
