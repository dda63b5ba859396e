/**
 * TCP connections of every address shape through dump and restore: IPv4, IPv6 and
 * v4-mapped IPv6 on loopback, and IPv4 and IPv6 on a non-loopback address (a veth
 * interface the test adds). tcp-shapes.c checks an established connection keeps the
 * options a program tunes (keepalive, MSS, Nagle, cork, linger, user timeout,
 * congestion control, not-sent low-water mark, priority, TOS/traffic class) and what
 * TCP_INFO shows of the handshake (timestamps, SACK, window scaling, MSS);
 * tcp-half.c that every half-closed state comes back on the non-loopback addresses too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { useCleanups } from '../helpers/cleanup.js';
import { dumpRestoreVerdict, startLocked } from '../helpers/tcp.js';

const cleanups = useCleanups();

async function roundTrip(args: string[], verdict: string): Promise<void> {
  const v = startLocked(cleanups, args[0]!, args.slice(1));
  await v.waitFor(/READY/);
  assert.equal((await dumpRestoreVerdict(cleanups, v, { prefix: 'ckpt-tcp-shapes-' })).verdict, verdict);
}

for (const [family, what] of [['4', 'IPv4'], ['6', 'IPv6'], ['m', 'v4-mapped IPv6']] as const) {
  test(`an established connection keeps its options and handshake (${what}, loopback)`, () => roundTrip(['tcp-shapes', family], 'PASS shapes'));
}

/** A veth pair (this kernel has no dummy driver), one end with a benchmarking (198.18/15) and a ULA address (no DAD); removed afterwards. */
function testAddresses(): { v4: string; v6: string } {
  const dev = `ckpt-t${process.pid % 100000}`;
  const ip = (...a: string[]) => execFileSync('ip', a, { stdio: 'pipe' });
  ip('link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`);
  cleanups.push(() => void ip('link', 'del', dev));
  ip('link', 'set', dev, 'up');
  ip('link', 'set', `${dev}p`, 'up');
  ip('addr', 'add', '198.18.0.77/32', 'dev', dev);
  ip('-6', 'addr', 'add', 'fd00:c4e7::77/128', 'dev', dev, 'nodad');
  return { v4: '198.18.0.77', v6: 'fd00:c4e7::77' };
}

test('on non-loopback addresses: an established connection, and every half-closed state', async () => {
  const { v4, v6 } = testAddresses();
  for (const addr of [v4, v6]) {
    await roundTrip(['tcp-shapes', addr], 'PASS shapes');
    await roundTrip(['tcp-half', 'pairs', addr], 'PASS pairs');
  }
});
