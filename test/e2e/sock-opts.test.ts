/**
 * Socket options and shutdown state through dump and restore (sock-opts.c checks
 * itself): a listener bound with IP_FREEBIND to an address the machine lacks, device
 * bindings, linger, TCP knobs, keepalive, timeouts, buffer locks, a locked classic BPF
 * filter, IPv6 options, options on both ends of a TCP connection and of unix
 * socketpairs; unix, UDP and TCP sockets shut down for reading or writing. A socket
 * with an eBPF filter, and a unix stream with an out-of-band byte queued, are refused, by name (a TCP socket closed by a reset is restored: tcp-states.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useCleanups } from '../helpers/cleanup.js';
import { assertDumpRefused, verdictAfterRestore } from '../helpers/check-line.js';
import { kill, SIG } from '../../src/sys/index.js';

const cleanups = useCleanups();

test('every socket option and shutdown state the program set is there after restore', async () => {
  assert.equal(await verdictAfterRestore('sock-opts', { cleanups }), 'CHECK PASS');
});

for (const [mode, why] of [
  ['ebpf', /Cannot dump fd \d+ of process \d+: an eBPF socket filter \(SO_ATTACH_BPF\) is attached/],
  ['unix-oob', /Cannot dump fd \d+ of process \d+: .*an out-of-band byte \(MSG_OOB\) is queued/],
] as const) {
  test(`a socket ckpt cannot restore exactly is refused (${mode}), and the program runs on`, async () => {
    const v = await assertDumpRefused('sock-opts', { cleanups, args: [mode], why });
    if (mode !== 'unix-oob') return;
    // The failed dump read the queue in place: the program still finds its bytes and the mark.
    kill(v.pid, SIG.SIGUSR1);
    assert.match((await v.waitFor(/CHECK [^\n]*\n/))[0], /CHECK PASS/);
  });
}
