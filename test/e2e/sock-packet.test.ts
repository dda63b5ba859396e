/**
 * Packet sockets through dump and restore (sock-packet.c checks itself): bound
 * interface and protocol, an unbound socket with no protocol, options (auxdata, TPACKET
 * version), a membership added twice (lo's promiscuity count shows it, and that it
 * takes two drops to end); after restore a frame sent on lo from one socket reaches
 * the other with its auxdata. Queued frames, mmap'ed rings and fanout groups are
 * refused by name, and the program runs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { assertDumpRefused, verdictAfterRestore } from '../helpers/check-line.js';
import { useCleanups } from '../helpers/cleanup.js';
import { tamperImage } from '../helpers/tamper.js';
import { startVictim, waitGone } from '../helpers/victim.js';

const cleanups = useCleanups();

test('packet sockets keep their binding, options and memberships, and carry frames after restore', async () => {
  assert.equal(await verdictAfterRestore('sock-packet', { cleanups }), 'CHECK PASS');
});

for (const [mode, why] of [
  ['queued', /^Cannot dump fd \d+ of process \d+: packets are queued on this packet socket \(\d+ bytes of receive memory\)/],
  ['ring', /^Cannot dump fd \d+ of process \d+: packet sockets with mmap'ed rings \(PACKET_RX_RING\) are not supported/],
  ['fanout', /^Cannot dump fd \d+ of process \d+: packet sockets in a fanout group \(PACKET_FANOUT\) are not supported/],
] as const) {
  test(`a packet socket ckpt cannot restore exactly is refused (${mode}), and the program runs on`, async () => {
    await assertDumpRefused('sock-packet', { cleanups, args: [mode], why });
  });
}

test('an interface index that names another device at restore fails the restore, naming both', async () => {
  const v = startVictim('sock-packet');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-packet-img-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  // As if dumped on a machine where index 1 was another device.
  tamperImage(dir, { name: `core-${v.pid}`, kind: 'core', change: (c) => {
    const files = (c['resources'] as Record<string, { fds: Record<string, unknown>[] }>)['files']!;
    const bound = files.fds.map((f) => f['bound'] as { ifname?: string } | undefined).find((b) => b?.ifname === 'lo');
    assert.ok(bound, 'a packet socket bound to lo is saved with its interface name');
    bound.ifname = 'ckptgone0';
  } });
  assert.throws(() => restore({ imagesDir: dir }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'FILE_CHANGED', e.message);
    assert.match(e.message, /^Cannot restore fd \d+ of process \d+: interface 1 was ckptgone0 at dump; it is lo now$/);
    return true;
  });
  await waitGone(v.pid, 5000); // nothing is left behind
});
