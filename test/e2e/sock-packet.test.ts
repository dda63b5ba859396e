/**
 * Packet sockets through dump and restore (sock-packet.c checks itself): bound
 * interface and protocol, an unbound socket with no protocol, options (auxdata, TPACKET
 * version), memberships counted on lo's promiscuity; after restore a frame sent on lo
 * from one socket reaches the other with its auxdata. Queued frames, mmap'ed rings and
 * fanout groups are refused by name, and the program runs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('packet sockets keep their binding, options and memberships, and carry frames after restore', async () => {
  const v = startVictim('sock-packet');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-packet-img-');
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

for (const [mode, why] of [
  ['queued', /^Cannot dump fd \d+ of process \d+: packets are queued on this packet socket \(\d+ bytes of receive memory\)/],
  ['ring', /^Cannot dump fd \d+ of process \d+: packet sockets with mmap'ed rings \(PACKET_RX_RING\) are not supported/],
  ['fanout', /^Cannot dump fd \d+ of process \d+: packet sockets in a fanout group \(PACKET_FANOUT\) are not supported/],
] as const) {
  test(`a packet socket ckpt cannot restore exactly is refused (${mode}), and the program runs on`, async () => {
    const v = startVictim('sock-packet', { args: [mode] });
    cleanups.push(() => v.cleanup());
    await v.waitFor(/READY pid=\d+/);
    assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-packet-img-') }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'UNSUPPORTED', e.message);
      assert.match(e.message, why);
      return true;
    });
    assert.ok(v.alive());
  });
}
