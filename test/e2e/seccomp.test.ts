/**
 * Seccomp filters through the real engine (seccomp.c): a filter shared by two threads
 * (TSYNC) making getppid fail with EPERM and killing on acct(2), and a second one the
 * leader alone has (with SECCOMP_FILTER_FLAG_LOG). The dump injects its syscalls with
 * the filters suspended; after restore the victim checks each filter applies where it
 * did, a child it forks dies of acct, and a TSYNC still works. Strict mode, a user
 * notification filter and a filter shared by some threads only are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { listTasks } from '../../src/proc/index.js';
import { kill, SIG } from '../../src/sys/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = ['seccomp-errno', 'seccomp-other', 'seccomp-leader-only', 'seccomp-count', 'seccomp-thread', 'seccomp-kill', 'seccomp-tsync'];

test('seccomp filters, shared and per thread, survive dump and restore', async () => {
  const v = startVictim('seccomp');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-seccomp-img-'), pass: CHECKS });
});

test('a leave-running dump of a filtered process leaves its filters in force', async () => {
  const v = startVictim('seccomp');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-seccomp-img-'), leaveRunning: true });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/^DONE$/m);
  const out = v.output();
  assert.doesNotMatch(out, /^FAIL/m, out);
  for (const c of CHECKS) assert.match(out, new RegExp(`^PASS ${c}$`, 'm'), `check ${c}:\n${out}`);
});

const refusals: [string, (pid: number) => string | RegExp][] = [
  ['strict', (pid) => `Cannot dump process ${pid}: thread ${pid} runs in seccomp strict mode, which is not supported`],
  ['notif', (pid) => `Cannot dump process ${pid}: seccomp filter 0 of thread ${pid} can return SECCOMP_RET_USER_NOTIF; user notification listeners are not supported yet`],
  ['split', (pid) => {
    const [, first, second] = listTasks(pid);
    return `Cannot dump process ${pid}: threads ${pid} and ${second} share seccomp filter 2 of their chains, which thread ${first} lacks; only filters every thread shares, or each thread's own, can be restored`;
  }],
];

for (const [mode, message] of refusals) {
  test(`seccomp: ${mode} is refused and the process runs on`, async () => {
    const v = startVictim('seccomp', { args: [mode] });
    cleanups.push(() => v.cleanup());
    await v.waitFor(/READY pid=\d+/);
    await new Promise((r) => setTimeout(r, 50)); // strict mode is entered just after READY
    assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-seccomp-img-') }), { code: 'UNSUPPORTED', message: message(v.pid) });
    assert.ok(v.alive(), 'a refused dump leaves the process running');
  });
}
