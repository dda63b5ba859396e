/**
 * The round trip of a victim that checks its own state (test/victims/selfcheck.h):
 * dump it (no warnings expected), wait until it and the other processes of its tree are
 * gone, restore, send SIGUSR1, and assert that it printed no FAIL line and every
 * expected PASS line. The log is cut back to its length at dump, so only what the
 * restored program prints is checked.
 */
import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { waitGone, type Victim } from './victim.js';

export async function selfCheckRoundTrip(v: Victim, opts: { imagesDir: string; pass: string[]; alsoGone?: number[] }): Promise<void> {
  const d = dump(v.pid, { imagesDir: opts.imagesDir });
  assert.deepEqual(d.warnings, []);
  const logAtDump = statSync(v.log).size;
  for (const pid of [v.pid, ...(opts.alsoGone ?? [])]) await waitGone(pid);
  truncateSync(v.log, logAtDump);

  const r = restore({ imagesDir: opts.imagesDir });
  assert.equal(r.pid, v.pid);
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/^DONE$/m);
  const out = v.output();
  assert.doesNotMatch(out, /^FAIL/m, out);
  for (const p of opts.pass) assert.match(out, new RegExp(`^PASS ${p}$`, 'm'), out);
}

/**
 * The restore half for victims that end with "DONE fails=N" (unix-*.c): restore with
 * no warnings, SIGUSR1, then no FAIL line, `expect` seen and no failure counted.
 */
export async function restoreAndVerify(v: Victim, opts: { imagesDir: string; expect: RegExp }): Promise<void> {
  const mark = v.output().length;
  const res = restore({ imagesDir: opts.imagesDir });
  assert.deepEqual(res.warnings, []);
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/, 15000);
  const out = v.output().slice(mark);
  assert.doesNotMatch(out, /FAIL/, out);
  assert.match(out, opts.expect, out);
  assert.match(out, /DONE fails=0/, out);
}
