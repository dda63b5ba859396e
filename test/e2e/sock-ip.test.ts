/**
 * Ping (ICMP) sockets, UDP-Lite and raw IP sockets, IPv4 and IPv6, through dump and
 * restore (sock-ip.c checks itself): bound names (a ping socket's echo id), peers,
 * options (checksum coverage, IP_HDRINCL, IPV6_CHECKSUM, the ICMP filters); after
 * restore pings get their replies, UDP-Lite carries datagrams, and the raw sockets'
 * filters still keep the echo traffic out. A queued datagram is refused by name.
 * Ping sockets need net.ipv4.ping_group_range to include root's group: the test sets
 * it for its run and puts the old value back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { assertDumpRefused, verdictAfterRestore } from '../helpers/check-line.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const RANGE = '/proc/sys/net/ipv4/ping_group_range';

function allowPing(): void {
  const old = readFileSync(RANGE, 'utf8').trim();
  if (old === '0 0' || /^0\s/.test(old)) return;
  writeFileSync(RANGE, '0 0');
  cleanups.push(() => writeFileSync(RANGE, old.replace(/\s+/, ' ')));
}

test('ping, UDP-Lite and raw sockets keep their names, peers, ids and filters, and carry traffic after restore', async () => {
  allowPing();
  assert.equal(await verdictAfterRestore('sock-ip', { cleanups }), 'CHECK PASS');
});

test('a UDP-Lite socket with a datagram queued is refused by name, and the program runs on', async () => {
  allowPing();
  await assertDumpRefused('sock-ip', {
    cleanups, args: ['queued'], why: /^Cannot dump fd \d+ of process \d+: datagrams are queued on UDP-Lite socket 127\.0\.0\.1:\d+ \(\d+ bytes\)/,
  });
});
