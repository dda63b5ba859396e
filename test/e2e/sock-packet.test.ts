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
import { assertDumpRefused, verdictAfterRestore } from '../helpers/check-line.js';
import { useCleanups } from '../helpers/cleanup.js';

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
