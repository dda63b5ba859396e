/**
 * TCP queues through dump and restore (tcp-queues.c checks itself). Connections that
 * wait in a listener's accept queue when the dump starts: the network lock keeps new
 * ones out and the dump lets the program accept them before the freeze, so they are
 * saved as connections with their requests, answered after restore. Bytes in flight
 * both ways: sent and never acknowledged (the test drops what goes to one end), a FIN
 * sent and not acknowledged, and bytes received whose acknowledgement was lost: after
 * restore every byte arrives exactly once. A program that does not accept: the dump
 * refuses (the process runs on), or with --skip-in-flight leaves the connection out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { dropNftTable as dropTable, dumpRestoreVerdict, startLocked } from '../helpers/tcp.js';

const cleanups = useCleanups();
const nft = (input: string) => void execFileSync('nft', ['-f', '-'], { input });
const start = (args: string[]) => startLocked(cleanups, 'tcp-queues', args);

test('connections waiting in the accept queue at dump are accepted, and answered after restore', async () => {
  const v = start(['accept']);
  const port = Number((await v.waitFor(/PORT (\d+)/))[1]);
  // Just after a round: the next accept is 500 ms away, the clients wait in the queue meanwhile.
  const before = v.output().length;
  await v.waitFor(/ACCEPTED total=0\n/);
  while (v.output().length === before) await new Promise((r) => setTimeout(r, 5));
  const clients: { sock: Socket; got: Promise<string> }[] = [];
  for (let i = 0; i < 3; i++) {
    const sock = connect({ host: '127.0.0.1', port });
    await new Promise<void>((res, rej) => { sock.once('connect', res); sock.once('error', rej); });
    sock.write(`req-${i}`);
    cleanups.push(() => void sock.destroy());
    let got = '';
    const answer = new Promise<string>((res) => sock.on('data', (d) => { got += d.toString(); if (got.length >= 5) res(got); }));
    clients.push({ sock, got: answer });
  }
  // Each accepted connection goes to a peer outside the tree (the test): a warning each.
  assert.equal((await dumpRestoreVerdict(cleanups, v, { prefix: 'ckpt-tcp-queues-', warnings: 3 })).verdict, 'PASS accept 3');
  assert.deepEqual(await Promise.all(clients.map((c) => c.got)), ['ans-0', 'ans-1', 'ans-2']);
});

test('a program that does not accept: the dump refuses after waiting; --skip-in-flight leaves the connection out', async () => {
  const v = start(['noaccept']);
  const port = Number((await v.waitFor(/PORT (\d+)/))[1]);
  await v.waitFor(/READY/);
  const old = connect({ host: '127.0.0.1', port });
  await new Promise<void>((res, rej) => { old.once('connect', res); old.once('error', rej); });
  cleanups.push(() => void old.destroy());
  const closed = new Promise<string>((res) => { old.on('error', (e: NodeJS.ErrnoException) => res(e.code ?? e.message)); old.on('close', () => res('closed')); });
  const dir = cleanups.tempDir('ckpt-tcp-queues-');
  assert.throws(() => dump(v.pid, { imagesDir: dir }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'UNSUPPORTED', e.message);
    assert.match(e.message, new RegExp(`^Cannot dump fd 3 of process ${v.pid}: 1 connection\\(s\\) wait in the accept queue of the listener at 127\\.0\\.0\\.1:${port}; they cannot be put back, and the program did not accept them while the dump waited`));
    return true;
  });
  assert.ok(v.alive());
  const d = dump(v.pid, { imagesDir: dir, skipInFlight: true });
  assert.equal(d.warnings.length, 1, d.warnings.join('\n'));
  assert.match(d.warnings[0]!, /1 connection\(s\) wait in the accept queue .*; left out \(--skip-in-flight\): their clients are reset after restore/);
  await waitGone(v.pid);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  // The connection left out: its next segment meets no connection and is reset.
  old.write('old');
  assert.equal(await closed, 'ECONNRESET');
  const fresh = connect({ host: '127.0.0.1', port });
  cleanups.push(() => void fresh.destroy());
  fresh.write('new');
  kill(rv.pid, SIG.SIGUSR1);
  assert.equal((await rv.waitFor(/^(PASS|FAIL).*$/m, 30_000))[0], 'PASS noaccept');
});

test('bytes and a FIN sent and never acknowledged, both ways, arrive exactly once after restore', async () => {
  const v = start(['inflight']);
  const port = Number((await v.waitFor(/PORT (\d+)/))[1]);
  // Everything sent to c is lost until the test lets it through again.
  const table = `ckpt-test-inflight-${port}`;
  nft(`table inet ${table} {\n chain input { type filter hook input priority raw; policy accept;\n tcp dport ${port} drop\n }\n}\n`);
  cleanups.push(() => dropTable(table));
  kill(v.pid, SIG.SIGUSR2);
  const m = await v.waitFor(/INFLIGHT s=(\d+)\/(\d+) c=(\d+)\/(\d+)/);
  // s: 64 KiB and its FIN not acknowledged; c: its 6 bytes not acknowledged (s has them).
  assert.equal(Number(m[1]), 64 * 1024 + 1, m[0]);
  assert.equal(Number(m[3]), 6, m[0]);
  const dir = cleanups.tempDir('ckpt-tcp-queues-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  dropTable(table);
  kill(rv.pid, SIG.SIGUSR1);
  assert.equal((await rv.waitFor(/^(PASS|FAIL).*$/m, 30_000))[0], 'PASS inflight');
});
