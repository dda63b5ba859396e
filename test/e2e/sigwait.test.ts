/**
 * Temporary signal masks (sigwait.c): threads inside sigsuspend, ppoll, pselect6,
 * epoll_pwait and sigwaitinfo are dumped; after a leave-running dump and after a
 * restore each one's wait still ends on its signal, and its mask is the real one, not
 * the one it waited with.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, NR, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const CHECKS = 10;
const WAITS = [NR.rt_sigsuspend, NR.ppoll, NR.pselect6, NR.epoll_pwait, NR.rt_sigtimedwait].sort((a, b) => a - b);

function syscallOf(pid: number, tid: string): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8').split(' ')[0]);
  } catch {
    return -1;
  }
}

/** Until every thread is inside its waiting call. */
async function waitInCalls(pid: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const calls = readdirSync(`/proc/${pid}/task`).map((t) => syscallOf(pid, t)).sort((a, b) => a - b);
    if (JSON.stringify(calls) === JSON.stringify(WAITS)) return;
    if (Date.now() > deadline) throw new Error(`threads of ${pid} are in calls ${calls.join(',')}, not ${WAITS.join(',')}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function start(): Promise<Victim> {
  const v = startVictim('sigwait');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+|SETUP FAIL.*/);
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  await waitInCalls(v.pid);
  return v;
}

async function expectPass(v: Victim): Promise<void> {
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  const out = v.output();
  assert.doesNotMatch(out, /FAIL/, out);
  assert.equal([...out.matchAll(/^PASS /gm)].length, CHECKS, out);
}

test('a leave-running dump gives each waiting thread its real mask back', async () => {
  const v = await start();
  dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-sigwait-'), leaveRunning: true });
  await expectPass(v);
});

test('a restored thread that waited with a temporary mask has its real mask after the wait', async () => {
  const v = await start();
  const dir = cleanups.tempDir('ckpt-sigwait-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  await waitInCalls(r.pid);
  await expectPass(rv);
});
