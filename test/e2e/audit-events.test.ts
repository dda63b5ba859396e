/**
 * epoll shapes of real event loops (audit-events.c): a one-shot watch that fired must
 * stay disarmed after restore (and restore --check must find it so), an exclusive watch,
 * an epoll in an epoll, an edge-triggered event not collected yet, an absolute timerfd
 * cancelled on clock set. The victim checks itself after restore.
 */
import { test } from 'node:test';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = ['epoll-oneshot-disarmed', 'epoll-oneshot-rearm', 'epoll-oneshot-pipe', 'epoll-exclusive', 'epoll-nested', 'epoll-et-pending', 'timerfd-abs-cancel'];

test('a fired one-shot epoll watch stays disarmed; exclusive, nested and edge-triggered watches and an absolute timerfd come back', async () => {
  const v = startVictim('audit-events');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-audit-events-'), pass: CHECKS });
});
