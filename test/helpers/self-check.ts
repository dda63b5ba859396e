/**
 * The round trip of a self-checking victim: it sets its state up, prints READY, and
 * after restore, on SIGUSR1, checks that state itself, printing "PASS what" or
 * "FAIL what (detail)" lines and "DONE fails=N".
 */
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from './victim.js';
import type { Cleanups } from './cleanup.js';

export async function selfCheckRoundTrip(name: string, opts: { args?: string[]; checks: number; cleanups: Cleanups }): Promise<void> {
  const { cleanups } = opts;
  const v = startVictim(name, { args: opts.args ?? [] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+|SETUP FAIL.*/);
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  const dir = cleanups.tempDir(`ckpt-${name}-`);
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  await restoreAndCheck(v, { dir, checks: opts.checks, cleanups });
}

/** Restores the images in `dir` of victim v (dumped and gone), lets it check itself and expects `checks` PASS lines. */
export async function restoreAndCheck(v: Victim, opts: { dir: string; checks: number; cleanups: Cleanups }): Promise<void> {
  const r = restore({ imagesDir: opts.dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  opts.cleanups.push(() => rv.kill());
  kill(r.pid, SIG.SIGUSR1);
  await rv.waitFor(/DONE fails=\d+/);
  const out = rv.output();
  assert.doesNotMatch(out, /FAIL/, out);
  assert.equal([...out.matchAll(/^PASS /gm)].length, opts.checks, out);
}
