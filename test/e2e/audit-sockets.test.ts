/**
 * Socket and pipe shapes of servers (audit-sockets.c): SO_REUSEPORT groups of TCP
 * listeners and UDP sockets, an IPv6-only listener beside an IPv4 one on the same port,
 * a packet-mode pipe (O_DIRECT) with packets queued. The victim checks itself after
 * restore. A UDP socket with an ICMP error queued (IP_RECVERR) and a TCP connection with
 * urgent data not acknowledged are refused at dump, and keep their error and mark.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { kill, SIG } from '../../src/sys/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = ['reuseport-tcp', 'v6only-beside-v4', 'reuseport-udp', 'pipe-packets'];

test('reuseport groups, v6-only beside v4 listeners and a packet-mode pipe come back as they were', async () => {
  const v = startVictim('audit-sockets');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-audit-sockets-'), pass: CHECKS });
});

test('a socket with an ICMP error queued (IP_RECVERR) is refused, and keeps its error', async () => {
  const v = startVictim('audit-sockets', { args: ['recverr'] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ port=\d+ fd=(\d+)/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-audit-sockets-') }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`^Cannot dump fd ${m[1]} of process ${v.pid}: the socket has a pending error or queued errors`),
  });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/^DONE$/m);
  assert.match(v.output(), /^PASS recverr-kept$/m, v.output());
});

test('urgent data sent and not acknowledged is refused at dump, and the receiver still finds its mark', async () => {
  const v = startVictim('audit-sockets', { args: ['urgent'] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ port=\d+ fd=(\d+)/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-audit-sockets-') }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`^Cannot dump fd ${m[1]} of process ${v.pid}: urgent data \\(MSG_OOB\\) sent on the TCP connection .* is not acknowledged yet`),
  });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/^DONE$/m);
  assert.match(v.output(), /^PASS urgent-kept$/m, v.output());
});
