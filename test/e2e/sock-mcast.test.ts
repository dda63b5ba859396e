/**
 * IP multicast memberships of UDP sockets through dump and restore (sock-mcast.c checks
 * itself): any-source, source-specific (INCLUDE) and source-blocking (EXCLUDE) IPv4
 * memberships and an IPv6 one, read back with MCAST_MSFILTER after restore, and a
 * datagram to a joined group that arrives only while the group is joined.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertDumpRefused, checkLine, verdictAfterRestore } from '../helpers/check-line.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('multicast memberships of UDP sockets, with their source filters, are joined again at restore', async () => {
  assert.equal(await verdictAfterRestore('sock-mcast', { cleanups }), 'CHECK PASS');
});

test('where the BPF iterator cannot run, a UDP socket is refused: its IP_MULTICAST_IF index could not be told from unset', async () => {
  process.env['CKPT_BPF_ITER'] = 'off';
  try {
    const v = await assertDumpRefused('sock-mcast', {
      cleanups, args: [], why: /^Cannot dump fd \d+ of process \d+: its IP_MULTICAST_IF may have been set by interface index alone, which only a BPF iterator can read/,
    });
    assert.equal(await checkLine(v), 'CHECK PASS');
  } finally {
    delete process.env['CKPT_BPF_ITER'];
  }
});
