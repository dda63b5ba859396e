/**
 * Per-process and per-thread knobs (knobs.c): THP-disable flags, each thread's timer
 * slack, parent-death signal and name come back; a sealed area (mseal) or an autogroup
 * with a nice value is refused at dump, and the target runs on untouched; a hard limit
 * or the absence of no_new_privs that the restorer cannot give back fails the restore.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { addressOf, kill, NR, rawSyscall, SIG } from '../../src/sys/index.js';
import { selfCheckRoundTrip } from '../helpers/self-check.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, waitGone, type Victim } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = 7;
const RLIMIT_RTTIME = 15;
const PR_SET_NO_NEW_PRIVS = 38;

async function start(mode: string): Promise<Victim> {
  const v = startVictim('knobs', { args: [mode] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+|SETUP FAIL.*|SKIP.*/);
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  return v;
}

async function runsOn(v: Victim): Promise<void> {
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  assert.doesNotMatch(v.output(), /FAIL/, v.output());
  assert.equal([...v.output().matchAll(/^PASS /gm)].length, CHECKS, v.output());
}

test('THP flags and each thread\'s timer slack, parent-death signal and name come back', () =>
  selfCheckRoundTrip('knobs', { args: ['ok'], checks: CHECKS, cleanups }));

test('a sealed area is refused at dump, naming it; the process runs on', async () => {
  const v = await start('mseal');
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-knobs-') }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`^Cannot dump process ${v.pid}: its area 0x[0-9a-f]+-0x[0-9a-f]+ .*is sealed \\(mseal\\)`),
  });
  await runsOn(v);
});

test('an autogroup with a nice value is refused at dump; the process runs on', async (t) => {
  const v = await start('autogroup');
  if (/SKIP/.test(v.output())) return t.skip(v.output().trim());
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-knobs-') }), {
    code: 'UNSUPPORTED',
    message: `Cannot dump process ${v.pid}: its autogroup (session) has nice 5, which is not saved`,
  });
  await runsOn(v);
});

test('a prctl state ckpt does not save (the machine-check kill policy) is refused at dump; the process runs on', async () => {
  const v = await start('mce');
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-knobs-') }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`^Cannot dump thread ${v.pid} of process ${v.pid}: its machine-check kill policy \\(PR_MCE_KILL\\) is \\d+ \\(ckpt's is \\d+\\), which is not saved$`),
  });
  await runsOn(v);
});

// Last: it lowers this test process's own hard limit and sets its no_new_privs for good.
test('a hard limit or no_new_privs the restorer cannot give back fails the restore, leaving nothing', async () => {
  const v = await start('ok');
  const dir = cleanups.tempDir('ckpt-knobs-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);

  const lim = Buffer.alloc(16); // soft and hard 0
  assert.equal(rawSyscall(NR.prlimit64, [0, RLIMIT_RTTIME, 0, addressOf(lim)]).ret, 0n); // read first: unlimited
  assert.equal(lim.readBigInt64LE(8), -1n, 'the victim had no hard limit on realtime timeout');
  lim.fill(0);
  assert.equal(rawSyscall(NR.prlimit64, [0, RLIMIT_RTTIME, addressOf(lim), 0]).ret, 0n);
  assert.throws(() => restore({ imagesDir: dir }), {
    code: 'PERMISSION',
    message: new RegExp(`^Cannot restore the limit Max realtime timeout \\(resource 15\\) of process ${v.pid} \\(soft unlimited, hard unlimited\\): raising a hard limit`),
  });
  assert.ok(!existsSync(`/proc/${v.pid}`) || (await waitGone(v.pid), true));

  assert.equal(rawSyscall(NR.prctl, [PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0]).ret, 0n);
  assert.throws(() => restore({ imagesDir: dir }), {
    code: 'PERMISSION',
    message: `Cannot restore process ${v.pid}: the restorer runs with no_new_privs, which the process did not have and could not drop`,
  });
});
