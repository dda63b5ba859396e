/**
 * The network lock: a server (tcp-lock.c) is dumped and restored while a client outside
 * the tree sends a request every millisecond. Both check themselves: the server that
 * the requests came numbered with none missing (a request the kernel acknowledged after
 * the dump read the socket's queues would be missing), the client that every request
 * was answered exactly once and none hangs (a packet reaching the dead server's port
 * would draw a reset). Over IPv4 and IPv6 on lo, with nftables and iptables. Also: a leave-running dump lifts its
 * lock and removes a stale one; without nft the dump fails naming the option and the
 * server runs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { lockName } from '../../src/resources/net/lock.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const NFT = '/usr/sbin/nft';
const skip = existsSync(NFT) ? false : `${NFT} is not installed (apt-get install nftables)`;
const tables = () => execFileSync(NFT, ['list', 'tables', 'inet'], { encoding: 'utf8' });
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Removes table `name` if it is there (a failed restore leaves its lock). */
const dropTable = (name: string) => void execFileSync(NFT, ['-f', '-'], { input: `add table inet ${name}\ndelete table inet ${name}\n` });

async function startPair(ip: '4' | '6'): Promise<{ server: Victim; client: Victim }> {
  const server = startVictim('tcp-lock', { args: ['server', ip] });
  cleanups.push(() => server.cleanup());
  cleanups.push(() => dropTable(lockName(server.pid)));
  const port = (await server.waitFor(/PORT (\d+)/))[1]!;
  const client = startVictim('tcp-lock', { args: ['client', port, ip] });
  cleanups.push(() => client.cleanup());
  await client.waitFor(/CONNECTED/);
  await server.waitFor(/READY/);
  await pause(100); // requests flowing
  return { server, client };
}

/** Stops the client, which then checks every request was answered once; the server checks what it got once the client closes. */
async function verdicts(server: Victim, client: Victim): Promise<void> {
  await pause(200);
  kill(client.pid, SIG.SIGUSR1);
  const c = (await client.waitFor(/^(PASS|FAIL).*$/m, 30_000))[0];
  assert.match(c, /^PASS \d+ answers$/, c);
  const s = (await server.waitFor(/^(PASS|FAIL).*$/m, 10_000))[0];
  assert.match(s, /^PASS served \d+ requests in order$/, s);
}

const IPTABLES = '/usr/sbin/iptables';
/** Whether the lock of `pid` is in place: nftables table inet ckpt-PIDNS-PID, or iptables chain ckpt-PIDNS-PID-in. */
const locked = (pid: number, method: 'nftables' | 'iptables') =>
  method === 'nftables' ? new RegExp(`^table inet ${lockName(pid)}$`, 'm').test(tables()) : execFileSync(IPTABLES, ['-w', '-S'], { encoding: 'utf8' }).includes(`-N ${lockName(pid)}-in\n`);

for (const [ip, method] of [['4', 'nftables'], ['6', 'nftables'], ['4', 'iptables']] as const) {
  const no = method === 'iptables' && !existsSync(IPTABLES) ? `${IPTABLES} is not installed` : skip;
  test(`IPv${ip}, ${method}: every request of a busy client is answered exactly once through dump and restore`, { skip: no }, async () => {
    const { server, client } = await startPair(ip);
    const dir = cleanups.tempDir('ckpt-netlock-img-');
    const d = dump(server.pid, { imagesDir: dir, networkLock: method });
    assert.deepEqual(d.networkLock, { name: lockName(server.pid), method, ports: 1 });
    await waitGone(server.pid);
    // Between dump and restore the lock holds: the client's packets are dropped, not answered by a reset.
    assert.ok(locked(server.pid, method));
    await pause(100);
    const r = restore({ imagesDir: dir });
    const rs = wrapPid(r.pid, server.dir, server.log);
    cleanups.push(() => rs.kill());
    assert.ok(!locked(server.pid, method));
    await verdicts(rs, client);
  });
}

test('a leave-running dump lifts its lock, and removes a stale lock of a process that runs untraced (not one of another PID namespace)', { skip }, async () => {
  const { server, client } = await startPair('4');
  // What a ckpt killed during a dump of the client would have left behind.
  execFileSync(NFT, ['add', 'table', 'inet', lockName(client.pid)]);
  cleanups.push(() => dropTable(lockName(client.pid)));
  // One of a ckpt in another PID namespace, where the client's PID may name a process being dumped.
  const foreign = `ckpt-1-${client.pid}`;
  execFileSync(NFT, ['add', 'table', 'inet', foreign]);
  cleanups.push(() => dropTable(foreign));
  const d = dump(server.pid, { imagesDir: cleanups.tempDir('ckpt-netlock-img-'), leaveRunning: true });
  assert.equal(d.networkLock, undefined);
  assert.doesNotMatch(tables(), new RegExp(`${lockName(server.pid)}\\b|${lockName(client.pid)}\\b`));
  assert.match(tables(), new RegExp(`^table inet ${foreign}$`, 'm'), 'a lock of another PID namespace is left alone');
  await verdicts(server, client);
});

test('without nft a dump of a tree with TCP sockets fails naming --network-lock, and the tree runs on', { skip }, async () => {
  const { server, client } = await startPair('4');
  const path = process.env['PATH'];
  process.env['PATH'] = '/nonexistent';
  try {
    assert.throws(() => dump(server.pid, { imagesDir: cleanups.tempDir('ckpt-netlock-img-') }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'UNSUPPORTED', e.message);
      assert.match(e.message, new RegExp(`^Cannot lock the network for the dump of process ${server.pid} \\(1 TCP port\\(s\\)\\): nft is not installed; .*--network-lock \\(skip`));
      return true;
    });
  } finally {
    process.env['PATH'] = path;
  }
  await verdicts(server, client);
});
