/**
 * Netlink sockets through dump and restore (sock-netlink.c checks itself): port ids
 * (the autobound pid, a chosen one, none), groups (beyond 32 too), options; after
 * restore an RTM_GETLINK dump, a NETLINK_GENERIC request and a link event on the
 * subscribed group all work. Messages from the kernel left in a receive queue, a dump
 * answer in progress and (another family) MPTCP sockets are refused by name, and the
 * program runs on; a NETLINK_AUDIT socket other than the audit daemon's is saved.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertDumpRefused, verdictAfterRestore } from '../helpers/check-line.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('netlink sockets keep their port ids, groups and options, and talk to the kernel after restore', async () => {
  assert.equal(await verdictAfterRestore('sock-netlink', { cleanups }), 'CHECK PASS');
});

test('a NETLINK_AUDIT socket (not the audit daemon\'s) comes back as one', async () => {
  assert.equal(await verdictAfterRestore('sock-netlink', { cleanups, args: ['audit'] }), 'CHECK PASS');
});

for (const [mode, why] of [
  ['queued', /^Cannot dump fd \d+ of process \d+: messages from the kernel are queued on this NETLINK_ROUTE socket \(\d+ bytes of receive memory\)/],
  ['dumping', /^Cannot dump fd \d+ of process \d+: the kernel is in the middle of answering a dump request on this NETLINK_ROUTE socket/],
  // Not netlink: a family no rule handles is refused by its protocol's name.
  ['mptcp', /^Cannot dump fd \d+ of process \d+: MPTCP sockets are not supported yet \(socket:\[\d+\]\)$/],
] as const) {
  test(`a socket ckpt cannot restore exactly is refused (${mode}), and the program runs on`, async () => {
    await assertDumpRefused('sock-netlink', { cleanups, args: [mode], why });
  });
}
