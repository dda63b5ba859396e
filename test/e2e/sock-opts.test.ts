/**
 * Socket options and shutdown state through dump and restore (sock-opts.c checks
 * itself): a listener bound with IP_FREEBIND to an address the machine lacks, device
 * bindings, linger, TCP knobs, keepalive, timeouts, buffer locks, a locked classic BPF
 * filter, IPv6 options, options on both ends of a TCP connection and of unix
 * socketpairs; unix, UDP and TCP sockets shut down for reading or writing. A socket
 * with an eBPF filter is refused, by name (a TCP socket closed by a reset is restored: tcp-states.test.ts).
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

test('every socket option and shutdown state the program set is there after restore', async () => {
  const v = startVictim('sock-opts');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-sockopts-img-');
  const logAtDump = statSync(v.log).size;
  const r = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(r.warnings, []);
  await waitGone(v.pid);
  truncateSync(v.log, logAtDump);
  const res = restore({ imagesDir: dir });
  const rv = wrapPid(res.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.deepEqual(res.warnings, []);
  kill(rv.pid, SIG.SIGUSR1);
  const m = await rv.waitFor(/CHECK (PASS|FAIL.*)/);
  assert.equal(m[0], 'CHECK PASS');
});

for (const [mode, why] of [
  ['ebpf', /Cannot dump fd \d+ of process \d+: an eBPF socket filter \(SO_ATTACH_BPF\) is attached/],
] as const) {
  test(`a socket ckpt cannot restore exactly is refused (${mode}), and the program runs on`, async () => {
    const v = startVictim('sock-opts', { args: [mode] });
    cleanups.push(() => v.cleanup());
    await v.waitFor(/READY pid=\d+/);
    assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-sockopts-img-') }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'UNSUPPORTED', e.message);
      assert.match(e.message, why);
      return true;
    });
    assert.ok(v.alive());
  });
}
