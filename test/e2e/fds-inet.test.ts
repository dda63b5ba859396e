/**
 * TCP listeners (IPv4, IPv6), UDP sockets and a TCP connection with bytes in flight
 * both ways, through the real engine: the restored sockets have their addresses,
 * options and flags, accept new connections, carry datagrams, and the connection
 * delivers exactly its bytes and then new ones (fd-inet.c checks itself). A connection left in a listener's accept queue,
 * or a datagram left unread, makes the dump refuse (the process runs on); a restore while the original still holds the port fails
 * with ADDRESS_IN_USE.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { statSync, truncateSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

/** Connects to host:port and resolves with everything the server sent before closing. */
function fetchReply(host: string, port: number): { reply: Promise<string>; ready: Promise<void> } {
  const s = connect({ host, port });
  let got = '';
  s.on('data', (d) => (got += d.toString()));
  const ready = new Promise<void>((res, rej) => { s.once('connect', () => res()); s.once('error', rej); });
  // The victim resets each connection after answering (no TIME_WAIT on its ports): close comes after an error.
  s.on('error', () => {});
  const reply = new Promise<string>((res) => s.once('close', () => res(got)));
  return { reply, ready };
}

async function check(v: Victim, ports: { l4: number; l6: number }, n: number): Promise<string> {
  const a = fetchReply('127.0.0.1', ports.l4);
  const b = fetchReply('::1', ports.l6);
  await Promise.all([a.ready, b.ready]);
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(new RegExp(`(CHECK [^\\n]*\\n[^]*?){${n}}`));
  const lines = [...v.output().matchAll(/^CHECK .*$/gm)].map((x) => x[0]);
  assert.equal(await a.reply, 'OK4');
  assert.equal(await b.reply, 'OK6');
  return lines[n - 1]!;
}

async function startInet(): Promise<{ v: Victim; ports: { l4: number; l6: number } }> {
  const v = startVictim('fd-inet');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/PORTS l4=(\d+) l6=(\d+) u1=(\d+) u2=(\d+)/);
  await v.waitFor(/READY pid=\d+/);
  return { v, ports: { l4: Number(m[1]), l6: Number(m[2]) } };
}

test('a leave-running dump leaves the sockets working, TCP connections in flight included', async () => {
  const { v, ports } = await startInet();
  const r = dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-inet-img-'), leaveRunning: true });
  assert.deepEqual(r.warnings, []);
  // The connection was in repair mode during the dump: it is back to normal, its bytes all there.
  assert.equal(await check(v, ports, 1), 'CHECK PASS');
  assert.equal(await check(v, ports, 2), 'CHECK PASS');
});

test('TCP listeners, UDP sockets and a TCP connection keep their addresses, options, flags and bytes', async () => {
  const { v, ports } = await startInet();
  const dir = cleanups.tempDir('ckpt-inet-img-');
  // A connection nobody accepted yet: it cannot be carried over, and the dump refuses, leaving the process running.
  const pending = connect({ host: '127.0.0.1', port: ports.l4 });
  pending.on('error', () => {});
  cleanups.push(() => void pending.destroy());
  await new Promise((r) => pending.once('connect', r));
  assert.throws(() => dump(v.pid, { imagesDir: dir }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'UNSUPPORTED', e.message);
    assert.match(e.message, new RegExp(`^Cannot dump fd \\d+ of process ${v.pid}: 1 connection\\(s\\) wait in the accept queue of the listener at 127\\.0\\.0\\.1:${ports.l4}; they cannot be put back`));
    return true;
  });
  // The victim accepts it with the others and answers: then the dump goes through.
  assert.equal(await check(v, ports, 1), 'CHECK PASS');
  pending.destroy();
  const logAtDump = statSync(v.log).size;
  const r = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(r.warnings, []);
  await waitGone(v.pid);
  truncateSync(v.log, logAtDump);

  // Someone else took the IPv6 port meanwhile: the restore cannot bind it, and says which.
  const squatter = createServer();
  await new Promise<void>((res) => squatter.listen({ host: '::1', port: ports.l6, ipv6Only: true }, res));
  try {
    assert.throws(() => restore({ imagesDir: dir }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'ADDRESS_IN_USE', e.message);
      assert.match(e.message, new RegExp(`^Cannot restore fd \\d+ of process ${v.pid}: \\[::1\\]:${ports.l6} is in use$`));
      return true;
    });
  } finally {
    await new Promise((res) => squatter.close(res));
  }
  await waitGone(v.pid);

  // The dump killed the original with its connection in repair mode: no FIN, no TIME_WAIT.
  const res = restore({ imagesDir: dir });
  const rv = wrapPid(res.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(rv.pid, v.pid);
  assert.deepEqual(res.warnings, []);
  assert.equal(await check(rv, ports, 2), 'CHECK PASS');
  assert.equal(await check(rv, ports, 3), 'CHECK PASS');
});

test('UDP datagrams waiting to be read: the dump refuses, naming them, and the process runs on', async () => {
  const { v } = await startInet();
  const u1 = Number(/u1=(\d+)/.exec(v.output())![1]);
  const s = createSocket('udp4');
  await new Promise<void>((res) => s.send('stray', u1, '127.0.0.1', () => res()));
  s.close();
  await new Promise((r) => setTimeout(r, 50));
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-inet-img-') }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'UNSUPPORTED', e.message);
    assert.match(e.message, new RegExp(`^Cannot dump fd \\d+ of process ${v.pid}: UDP datagrams wait to be read \\(\\d+ bytes of receive buffer\\); they cannot be put back with their senders' addresses`));
    return true;
  });
  assert.ok(v.alive());
});
