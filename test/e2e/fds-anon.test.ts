/**
 * eventfd, timerfd, signalfd and epoll through the real engine: the victim sets them
 * up (counters, an armed periodic timer, a pending blocked signal, epoll watches with
 * user data, one edge-triggered; an expired timer not read yet), is dumped, killed and restored, and then checks
 * itself on SIGUSR1 (fd-anon.c): every check must print PASS.
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
const CHECKS = [
  'epoll-wait', 'epoll-et', 'epoll-mod', 'epoll-mod-data', 'pipe', 'eventfd', 'eventfd-flags', 'eventfd-empty',
  'eventfd-semaphore', 'signalfd', 'timerfd-gettime', 'timerfd-expired', 'timerfd-read',
];

test('eventfd, timerfd, signalfd and epoll watches survive dump and restore', async () => {
  const v = startVictim('fd-anon');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-anon-img-');

  const d = dump(v.pid, { imagesDir: dir });
  // The second epoll's watch is on an fd closed since: it cannot be added back.
  assert.equal(d.warnings.length, 1, d.warnings.join('\n'));
  assert.match(d.warnings[0]!, /epoll watch on fd \d+ is on a file this process no longer has open/);
  const logAtDump = statSync(v.log).size;
  await waitGone(v.pid);
  truncateSync(v.log, logAtDump);

  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(rv.pid, v.pid);
  assert.deepEqual(r.warnings, []);
  kill(rv.pid, SIG.SIGUSR1);
  await rv.waitFor(/^DONE$/m);
  const out = rv.output();
  assert.doesNotMatch(out, /^FAIL/m, out);
  for (const c of CHECKS) assert.match(out, new RegExp(`^PASS ${c}$`, 'm'), `check ${c}:\n${out}`);
});
