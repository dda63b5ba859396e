/**
 * TCP connections in particular shapes (tcp-states.c checks itself): one reached at a
 * v4-mapped address through a dual-stack IPv6 listener keeps its addresses and bytes
 * through dump and restore (and the network lock locks it as the IPv4 it is on the
 * wire); one reset by its peer stays over (EOF, EPIPE); one with an urgent byte
 * (MSG_OOB) unread, a TCP_MD5SIG key, or a SYN saved by TCP_SAVE_SYN and not read, makes the dump refuse,
 * and the process runs on; a connect() in
 * progress (SYN_SENT) connects after restore. CRIU's --tcp-close,
 * at dump or at restore, gives the live connection up: both ends read EOF.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startLocked } from '../helpers/tcp.js';

const cleanups = useCleanups();

const start = (args: string[] = []) => startLocked(cleanups, 'tcp-states', args);

test('a connection at v4-mapped addresses keeps them and its bytes; a reset one stays over', async () => {
  const v = start();
  await v.waitFor(/READY/);
  const dir = cleanups.tempDir('ckpt-tcp-states-');
  const d = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(d.warnings, []);
  // The listener (a wildcard) and the two ends: ports locked as IPv4 (v4-mapped) or on every address
  // (the reset connection released its port).
  assert.equal(d.networkLock?.ports, 3);
  await waitGone(v.pid);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  kill(rv.pid, SIG.SIGUSR1);
  assert.equal((await rv.waitFor(/^(PASS|FAIL).*$/m))[0], 'PASS v4-mapped');
});

test('a listener with a TCP_MD5SIG key: the dump refuses, and the process runs on', async () => {
  const v = start(['md5']);
  await v.waitFor(/READY/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-tcp-states-') }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'UNSUPPORTED', e.message);
    assert.match(e.message, new RegExp(`^Cannot dump fd 3 of process ${v.pid}: TCP_MD5SIG keys are set on the socket; they cannot be read back`));
    return true;
  });
  assert.ok(v.alive());
});

test('an urgent byte not read yet: the dump refuses, naming the connection, and the process runs on', async () => {
  const v = start(['oob']);
  await v.waitFor(/READY/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-tcp-states-') }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'UNSUPPORTED', e.message);
    assert.match(e.message, new RegExp(`^Cannot dump fd \\d+ of process ${v.pid}: an urgent byte \\(MSG_OOB\\) waits to be read on the TCP connection \\[::ffff:7f00:1\\]:\\d+ → \\[::ffff:7f00:1\\]:\\d+; TCP repair cannot put it back`));
    return true;
  });
  assert.ok(v.alive());
});

test('a SYN saved by TCP_SAVE_SYN and not read yet: the dump refuses, and the process runs on with it', async () => {
  const v = start(['savesyn']);
  await v.waitFor(/READY/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-tcp-states-') }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'UNSUPPORTED', e.message);
    assert.match(e.message, new RegExp(`^Cannot dump fd \\d+ of process ${v.pid}: the SYN saved by TCP_SAVE_SYN on the TCP connection 127\\.0\\.0\\.1:\\d+ → 127\\.0\\.0\\.1:\\d+ was not read yet`));
    return true;
  });
  kill(v.pid, SIG.SIGUSR1);
  assert.equal((await v.waitFor(/^(PASS|FAIL).*$/m))[0], 'PASS saved syn');
});

for (const at of ['dump', 'restore'] as const) {
  test(`--tcp-close at ${at}: the connection is restored closed at both ends`, async () => {
    const v = start();
    await v.waitFor(/READY/);
    const dir = cleanups.tempDir('ckpt-tcp-states-');
    const d = dump(v.pid, { imagesDir: dir, tcpClose: at === 'dump' });
    // Given up at dump: only the listener is locked.
    assert.equal(d.networkLock?.ports, at === 'dump' ? 1 : 3);
    await waitGone(v.pid);
    const r = restore({ imagesDir: dir, tcpClose: at === 'restore' });
    const rv = wrapPid(r.pid, v.dir, v.log);
    cleanups.push(() => rv.kill());
    kill(rv.pid, SIG.SIGUSR2);
    assert.equal((await rv.waitFor(/^(PASS|FAIL).*$/m))[0], 'PASS closed');
  });
}

test('a connect() in progress (SYN_SENT) connects after restore', async () => {
  // An echo server whose SYNs are dropped (a table of the test's own) until the restore is done.
  const server = createServer((sock) => sock.pipe(sock));
  await new Promise<void>((res) => server.listen({ host: '127.0.0.1', port: 0 }, res));
  cleanups.push(() => void server.close());
  const port = (server.address() as AddressInfo).port;
  const table = `ckpt-test-syn-${port}`;
  execFileSync('nft', ['-f', '-'], { input: `table inet ${table} {\n chain input { type filter hook input priority raw; policy accept;\n tcp dport ${port} tcp flags syn drop\n }\n}\n` });
  const unblock = () => void execFileSync('nft', ['-f', '-'], { input: `add table inet ${table}\ndelete table inet ${table}\n` });
  cleanups.push(unblock);
  const v = start(['connect', String(port)]);
  await v.waitFor(/READY/);
  const dir = cleanups.tempDir('ckpt-tcp-states-');
  const d = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(d.warnings, []);
  await waitGone(v.pid);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  unblock();
  kill(rv.pid, SIG.SIGUSR1);
  assert.equal((await rv.waitFor(/^(PASS|FAIL).*$/m, 30_000))[0], 'PASS connected');
});
