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
import { killQuietly, startVictim, waitGone, wrapPid } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = [
  'epoll-wait', 'epoll-et', 'epoll-mod', 'epoll-mod-data', 'pipe', 'eventfd', 'eventfd-flags', 'eventfd-empty',
  'eventfd-semaphore', 'epoll-closed-fd', 'epoll-closed-fd-number', 'epoll-closed-fd-key', 'signalfd', 'timerfd-gettime', 'timerfd-expired', 'timerfd-read',
];

test('eventfd, timerfd, signalfd and epoll watches survive dump and restore', async () => {
  const v = startVictim('fd-anon');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-anon-img-');

  const d = dump(v.pid, { imagesDir: dir });
  // The second epoll's watch is on an fd closed since: it is added back through the pipe's other fd.
  assert.deepEqual(d.warnings, []);
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

test('an epoll watch on a file no fd of its process holds is refused at dump, naming it', async () => {
  const v = startVictim('fd-anon', { args: ['unreachable'] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ child=(\d+) epoll=(\d+) watch=(\d+)/);
  cleanups.push(() => killQuietly([Number(m[1])]));
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-anon-img-') }), {
    code: 'UNSUPPORTED',
    message: `Cannot dump fd ${m[2]} of process ${v.pid}: its epoll watch on fd ${m[3]} (events 0x19) is on a file that fd ${m[3]} no longer refers to, and no fd of this process holds that file`,
  });
  assert.ok(v.alive(), 'a refused dump leaves the process running');
});
