/**
 * Process, thread and signal state probed as a new user would (auditproc.c), each
 * checked by the victim itself after restore: a thread's own sigaltstack and pending
 * signal, its robust list (a mutex of a dead owner) and clear_child_tid (pthread_join);
 * SA_RESETHAND / SA_NODEFER behaviour; RT signals queued several times with their values,
 * a kill() keeping its sender and a pending SIGCHLD with its zombie; SIGCHLD ignored
 * (auto-reap) with a zombie made before it was ignored, which must survive the restore
 * (ckpt made it again while SIGCHLD was ignored: the kernel reaped it at once); clone
 * children whose exit signal is not SIGCHLD (they came back as ordinary children); fsuid/fsgid, dumpable 0 and a chroot. A child traced by the process is
 * refused at dump, and so are a thread in a Landlock domain (a restore would let it out)
 * and one with syscall user dispatch on (it would run its syscalls natively), and a process
 * whose main thread has exited (it was saved as a zombie, and left running).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { kill, SIG } from '../../src/sys/index.js';
import { restoreAndCheck, selfCheckRoundTrip } from '../helpers/self-check.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, waitGone } from '../helpers/victim.js';

const cleanups = useCleanups();

const roundTrip = (features: string[], checks: number) => selfCheckRoundTrip('auditproc', { args: features, checks, cleanups });

test('a thread\'s altstack, pending signal, robust list and clear_child_tid; signal flags; queued siginfo; SIGCHLD ignored', async () => {
  const v = startVictim('auditproc', { args: ['thread', 'sigflags', 'rtqueue', 'nocldwait'] });
  cleanups.push(() => v.cleanup());
  const child = Number((await v.waitFor(/CHILD pid=(\d+)/))[1]);
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-auditproc-');
  dump(v.pid, { imagesDir: dir });
  // Its zombie child comes to this test process (a subreaper): reaped here, its PID is free.
  await waitGone(v.pid);
  await waitGone(child);
  await restoreAndCheck(v, { dir, checks: 14, cleanups });
});

test('clone children with another exit signal (SIGUSR2, none), one a zombie, are still clone children after restore', async () => {
  const v = startVictim('auditproc', { args: ['exitsig'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+|SETUP FAIL.*/);
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  const children = [...v.output().matchAll(/CHILD pid=(\d+)/g)].map((m) => Number(m[1]));
  const dir = cleanups.tempDir('ckpt-auditproc-');
  dump(v.pid, { imagesDir: dir });
  for (const pid of [v.pid, ...children]) await waitGone(pid);
  await restoreAndCheck(v, { dir, checks: 4, cleanups });
});

test('a chroot, fsuid and fsgid and dumpable 0 come back', () => roundTrip(['chroot', 'fscreds', 'dumpable'], 3));

/** Starts auditproc with `feature`, expects the dump to fail with `error`, and the process to run on and pass its checks. */
async function refused(t: { skip(m: string): void }, feature: string, error: (pid: number) => { code?: string; message: string | RegExp }): Promise<void> {
  const v = startVictim('auditproc', { args: [feature] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+|SETUP FAIL.*|SKIP.*/);
  if (/SKIP/.test(v.output())) return t.skip(v.output().trim());
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-auditproc-') }), error(v.pid));
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  assert.match(v.output(), /^PASS /m);
  assert.doesNotMatch(v.output(), /FAIL/);
}

test('a process tracing its child is refused at dump, naming the tracer; both run on', (t) =>
  refused(t, 'traced', (pid) => ({ message: new RegExp(`^Cannot seize process \\d+: it is traced by process ${pid} \\(auditproc\\)`) })));

test('a thread in a Landlock domain is refused at dump (its sandbox is not saved); the process runs on', (t) =>
  refused(t, 'landlock', (pid) => ({
    code: 'UNSUPPORTED',
    message: `Cannot dump thread ${pid} of process ${pid}: it is in a Landlock domain (or another security module's confinement): it may not access ckpt with CAP_SYS_PTRACE, and its sandbox is not saved`,
  })));

test('a thread with syscall user dispatch on is refused at dump, before anything is injected; it still dispatches', (t) =>
  refused(t, 'sud', (pid) => ({
    code: 'UNSUPPORTED',
    message: `Cannot dump thread ${pid} of process ${pid}: it has syscall user dispatch on (PR_SET_SYSCALL_USER_DISPATCH), which is not saved`,
  })));

test('a process whose main thread has exited (pthread_exit) is refused at dump, not saved as a zombie; it runs on', async (t) => {
  await refused(t, 'deadleader', (pid) => ({
    code: 'UNSUPPORTED',
    message: `Cannot dump process ${pid}: its main thread has exited (pthread_exit) while 1 other thread(s) run on, which is not supported`,
  }));
});
