/**
 * The fd contract, probed (audit-fdfields.c): socket options and fd fields found neither
 * saved nor refused when docs/saved-state.md's "fd contract (complete list)" was drawn
 * up. The victim sets each, and checks it itself after restore.
 */
import { test } from 'node:test';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = [
  'udp-segment', 'udp-gro', 'ip-recvorigdstaddr', 'udp-cork', 'udp-no-check6-tx', 'udp-no-check6-rx', 'ipv6-2292pktinfo',
  'ipv6-2292hoplimit', 'ipv6-flowinfo', 'ipv6-flowinfo-send', 'ipv6-addr-preferences', 'ipv6-dstopts', 'so-incoming-cpu', 'tcp-rto-max',
  'socket-owner', 'epoll-busy-poll', 'deleted-rw-hint', 'tcp-fastopen', 'tcp-defer-accept', 'so-priority', 'so-busy-poll',
  'so-zerocopy', 'tcp-inq', 'so-rcvbufforce', 'ip-pktinfo', 'ip-recvtos', 'pty-slave-owner', 'timerfd-abs-monotonic',
];

test('socket options and fd fields real servers set come back: UDP GSO/GRO, IPv6 receive options, socket and pty owners, epoll busy poll, absolute timerfds', async () => {
  const v = startVictim('audit-fdfields');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-audit-fdfields-'), pass: CHECKS });
});
