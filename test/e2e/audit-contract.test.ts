/**
 * The process contract's known losses (auditpolicy.c), each checked by the victim
 * itself after restore: a thread's own personality (per task); NUMA memory policies of
 * threads (set_mempolicy) and areas (mbind), which came back as the default; membarrier
 * registrations (the restored program got EPERM from its expedited barrier); a non-root
 * process round-trips, and one in a Landlock domain is refused at dump (it was restored
 * outside its sandbox: the kcmp probe against ckpt could not tell for a thread without
 * CAP_SYS_PTRACE); a stopped child whose stop its parent collected is not reported
 * again, and one whose stop was not collected is reported once with its signal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { kill, SIG } from '../../src/sys/index.js';
import { restoreAndCheck, selfCheckRoundTrip } from '../helpers/self-check.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, waitGone } from '../helpers/victim.js';

const cleanups = useCleanups();

const roundTrip = (features: string[], checks: number) => selfCheckRoundTrip('auditpolicy', { args: features, checks, cleanups });

test('a thread with its own personality keeps it; the main thread keeps its own', () => roundTrip(['persona'], 3));

test('NUMA memory policies of threads and areas come back (a thread does not inherit the leader\'s)', () => roundTrip(['mempolicy'], 8));

test('membarrier registrations come back (the commands work, GET_REGISTRATIONS the same)', () => roundTrip(['membarrier'], 3));

test('a process that dropped to another uid round-trips', () => roundTrip(['nonroot'], 1));

test('a process that dropped every capability but kept uid 0 round-trips', () => roundTrip(['nocaps'], 1));

/** A Landlock domain in a process that `drop` made unable to reach ckpt (no CAP_SYS_PTRACE): refused, and it runs on. */
async function landlocked(t: { skip(m: string): void }, drop: string): Promise<void> {
  const v = startVictim('auditpolicy', { args: [drop, 'landlock'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+|SETUP FAIL.*|SKIP.*/);
  if (/SKIP/.test(v.output())) return t.skip(v.output().trim());
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-auditpolicy-') }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`^Cannot dump thread ${v.pid} of process ${v.pid}: it is in a Landlock domain .*it may not access a process with its own uid`),
  });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  assert.doesNotMatch(v.output(), /FAIL/);
  assert.equal([...v.output().matchAll(/^PASS /gm)].length, 2, v.output());
}

test('a non-root process in a Landlock domain is refused at dump; it runs on in its sandbox', (t) => landlocked(t, 'nonroot'));

test('a uid 0 process without capabilities in a Landlock domain is refused at dump', (t) => landlocked(t, 'nocaps'));

async function stoppedChild(feature: string, checks: number): Promise<void> {
  const v = startVictim('auditpolicy', { args: [feature] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+|SETUP FAIL.*/);
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  const child = Number(/CHILD pid=(\d+)/.exec(v.output())![1]);
  // A test failing before the victim's own check would leave the restored child stopped.
  cleanups.push(() => {
    try {
      kill(child, SIG.SIGKILL);
    } catch {
      /* gone already */
    }
  });
  const dir = cleanups.tempDir('ckpt-auditpolicy-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  await waitGone(child);
  await restoreAndCheck(v, { dir, checks, cleanups });
}

test('a stopped child whose stop its parent collected is not reported again', () => stoppedChild('stopseen', 3));

test('a stopped child whose stop its parent did not collect is reported once, with its stop signal', () => stoppedChild('stopunseen', 3));
