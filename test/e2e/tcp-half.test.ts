/**
 * Half-closed TCP connections through dump and restore (tcp-half.c checks itself):
 * FIN_WAIT1, FIN_WAIT2, CLOSING, CLOSE_WAIT and LAST_ACK with both ends in the tree,
 * over IPv4, IPv6 and v4-mapped addresses, with bytes unsent behind a FIN; and a
 * server whose connections are half-closed both ways with the peer outside the tree,
 * which notices nothing but the pause. The restored ends are in their states and go
 * on: every byte arrives, EOF comes exactly where the peer shut down, writes after a
 * shutdown fail with EPIPE.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { dumpRestoreVerdict, startLocked } from '../helpers/tcp.js';

const cleanups = useCleanups();
const start = (args: string[]) => startLocked(cleanups, 'tcp-half', args);

for (const [family, what] of [['4', 'IPv4'], ['6', 'IPv6'], ['m', 'v4-mapped IPv6']] as const) {
  test(`every half-closed state, both ends in the tree (${what})`, async () => {
    const v = start(['pairs', family]);
    await v.waitFor(/READY/);
    assert.equal((await dumpRestoreVerdict(cleanups, v, { prefix: 'ckpt-tcp-half-' })).verdict, 'PASS pairs');
  });
}

const IPTABLES = '/usr/sbin/iptables';
// The forged segments must pass either lock (the iptables chains are removed by the restore, or by the next lock).
for (const method of ['nftables', 'iptables'] as const) {
  const skip = method === 'iptables' && !existsSync(IPTABLES) ? `${IPTABLES} is not installed` : false;
  test(`CLOSE_WAIT and FIN_WAIT2 with the peer outside the tree (${method} lock): it sees only a pause`, { skip }, () => outsidePeer(method));
}

async function outsidePeer(networkLock: 'nftables' | 'iptables') {
  const v = start(['serve']);
  const port = (await v.waitFor(/PORT (\d+)/))[1]!;
  const peer = startVictim('tcp-half', { args: ['peer', port] });
  cleanups.push(() => peer.cleanup());
  await Promise.all([v.waitFor(/READY/), peer.waitFor(/READY/)]);
  const dir = cleanups.tempDir('ckpt-tcp-half-');
  const d = dump(v.pid, { imagesDir: dir, networkLock });
  assert.equal(d.warnings.length, 2, d.warnings.join('\n'));
  await waitGone(v.pid);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  kill(rv.pid, SIG.SIGUSR1);
  // The peer's close would move the server's FIN_WAIT2 end on: only once the server has seen its states.
  await rv.waitFor(/CHECKED|FAIL/);
  kill(peer.pid, SIG.SIGUSR1);
  assert.equal((await rv.waitFor(/^(PASS|FAIL).*$/m, 30_000))[0], 'PASS serve');
  assert.equal((await peer.waitFor(/^(PASS|FAIL).*$/m, 30_000))[0], 'PASS peer');
}
