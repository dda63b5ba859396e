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
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
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
  const v = startVictim('sock-ip');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-sockip-img-');
  const logAtDump = statSync(v.log).size;
  const r = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(r.warnings, []);
  await waitGone(v.pid);
  truncateSync(v.log, logAtDump);
  const res = restore({ imagesDir: dir });
  const rv = wrapPid(res.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(rv.pid, v.pid);
  assert.deepEqual(res.warnings, []);
  kill(rv.pid, SIG.SIGUSR1);
  const m = await rv.waitFor(/CHECK (PASS|FAIL.*)/);
  assert.equal(m[0], 'CHECK PASS');
});

test('a UDP-Lite socket with a datagram queued is refused by name, and the program runs on', async () => {
  allowPing();
  const v = startVictim('sock-ip', { args: ['queued'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-sockip-img-') }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'UNSUPPORTED', e.message);
    assert.match(e.message, /^Cannot dump fd \d+ of process \d+: datagrams are queued on UDP-Lite socket 127\.0\.0\.1:\d+/);
    return true;
  });
  assert.ok(v.alive());
});
