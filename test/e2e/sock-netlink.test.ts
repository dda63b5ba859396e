/**
 * Netlink sockets through dump and restore (sock-netlink.c checks itself): port ids
 * (the autobound pid, a chosen one, none), groups (beyond 32 too), options; after
 * restore an RTM_GETLINK dump, a NETLINK_GENERIC request and a link event on the
 * subscribed group all work. Messages from the kernel left in a receive queue, a dump
 * answer in progress and NETLINK_AUDIT sockets are refused by name, and the program runs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

async function checkOnce(v: Victim): Promise<string> {
  const before = (v.output().match(/^CHECK /gm) ?? []).length;
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(new RegExp(`(CHECK [^\\n]*\\n[^]*?){${before + 1}}`));
  return [...v.output().matchAll(/^CHECK .*$/gm)].map((x) => x[0])[before]!;
}

test('netlink sockets keep their port ids, groups and options, and talk to the kernel after restore', async () => {
  const v = startVictim('sock-netlink');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-netlink-img-');
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
  assert.equal(await checkOnce(rv), 'CHECK PASS');
});

for (const [mode, why] of [
  ['queued', /^Cannot dump fd \d+ of process \d+: messages from the kernel are queued on this NETLINK_ROUTE socket \(\d+ bytes of receive memory\)/],
  ['dumping', /^Cannot dump fd \d+ of process \d+: the kernel is in the middle of answering a dump request on this NETLINK_ROUTE socket/],
  ['audit', /^Cannot dump fd \d+ of process \d+: NETLINK_AUDIT sockets are not supported/],
] as const) {
  test(`a netlink socket ckpt cannot restore exactly is refused (${mode}), and the program runs on`, async () => {
    const v = startVictim('sock-netlink', { args: [mode] });
    cleanups.push(() => v.cleanup());
    await v.waitFor(/READY pid=\d+/);
    assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-netlink-img-') }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'UNSUPPORTED', e.message);
      assert.match(e.message, why);
      return true;
    });
    assert.ok(v.alive());
    if (mode === 'audit') assert.equal(await checkOnce(v), 'CHECK PASS');
  });
}
