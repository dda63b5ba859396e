/**
 * epoll shapes of real event loops (audit-events.c): a one-shot watch that fired must
 * stay disarmed after restore (and restore --check must find it so), an exclusive watch,
 * an epoll in an epoll, an edge-triggered event not collected yet, an absolute timerfd
 * cancelled on clock set. The victim checks itself after restore.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = ['epoll-oneshot-disarmed', 'epoll-oneshot-rearm', 'epoll-exclusive', 'epoll-nested', 'epoll-et-pending', 'timerfd-abs-cancel'];

test('a fired one-shot epoll watch stays disarmed; exclusive, nested and edge-triggered watches and an absolute timerfd come back', async () => {
  const v = startVictim('audit-events');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-audit-events-');
  const d = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(d.warnings, []);
  const logAtDump = statSync(v.log).size;
  await waitGone(v.pid);
  truncateSync(v.log, logAtDump);
  const r = restore({ imagesDir: dir, check: true });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.deepEqual(r.warnings, []);
  kill(rv.pid, SIG.SIGUSR1);
  await rv.waitFor(/^DONE$/m);
  const out = rv.output();
  assert.doesNotMatch(out, /^FAIL/m, out);
  for (const c of CHECKS) assert.match(out, new RegExp(`^PASS ${c}$`, 'm'), `check ${c}:\n${out}`);
});
