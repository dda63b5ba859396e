/**
 * IP multicast memberships of UDP sockets through dump and restore (sock-mcast.c checks
 * itself): any-source, source-specific (INCLUDE) and source-blocking (EXCLUDE) IPv4
 * memberships and an IPv6 one, read back with MCAST_MSFILTER after restore, and a
 * datagram to a joined group that arrives only while the group is joined.
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

test('multicast memberships of UDP sockets, with their source filters, are joined again at restore', async () => {
  const v = startVictim('sock-mcast');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-mcast-img-');
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
