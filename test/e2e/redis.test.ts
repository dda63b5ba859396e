/**
 * redis-server, a real program with a TCP listener, an epoll loop and background
 * threads: keys set before the dump are there after restore, a counter goes on, and a
 * client connection kept open across the dump and restore (its peer, the test, is
 * outside the dumped tree) carries on. Skipped when redis-server is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { freePort } from '../helpers/tcp.js';

const REDIS = '/usr/bin/redis-server';
const cleanups = useCleanups();


/** A minimal RESP client: one command at a time, replies as strings (bulk, simple, integer, error). */
class Resp {
  private buf = '';
  private waiting: ((s: string) => void) | undefined;
  constructor(readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      this.pump();
    });
  }
  static async open(port: number): Promise<Resp> {
    const s = connect({ host: '127.0.0.1', port });
    await new Promise<void>((res, rej) => { s.once('connect', res); s.once('error', rej); });
    return new Resp(s);
  }
  private pump(): void {
    if (!this.waiting) return;
    const m = /^([+\-:])(.*)\r\n/.exec(this.buf) ?? /^\$(-1)\r\n/.exec(this.buf);
    let reply: string | undefined;
    let used = 0;
    if (m) {
      reply = m[1] === '-1' ? '(nil)' : m[1] === '-' ? `ERR ${m[2]}` : m[2];
      used = m[0].length;
    } else {
      const b = /^\$(\d+)\r\n/.exec(this.buf);
      if (b && this.buf.length >= b[0].length + Number(b[1]) + 2) {
        reply = this.buf.slice(b[0].length, b[0].length + Number(b[1]));
        used = b[0].length + Number(b[1]) + 2;
      }
    }
    if (reply === undefined) return;
    this.buf = this.buf.slice(used);
    const w = this.waiting;
    this.waiting = undefined;
    w(reply);
  }
  cmd(...args: string[]): Promise<string> {
    const p = new Promise<string>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no reply to ${args.join(' ')}`)), 10_000);
      this.waiting = (s) => { clearTimeout(t); res(s); };
    });
    this.sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
    this.pump();
    return p;
  }
  close(): void {
    this.sock.destroy();
  }
}

test('redis-server keeps its keys and counts on after dump and restore', { skip: existsSync(REDIS) ? false : `${REDIS} is not installed (apt-get install redis-server)` }, async () => {
  const port = await freePort();
  const v = startVictim(REDIS, { args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'notice'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/Ready to accept connections/, 20_000);
  const c = await Resp.open(port);
  assert.equal(await c.cmd('SET', 'greeting', 'hello'), 'OK');
  assert.equal(await c.cmd('RPUSH', 'list', 'a', 'b', 'c'), '3');
  assert.equal(await c.cmd('INCR', 'counter'), '1');
  c.close();
  // A connection that stays open across the dump and restore: its peer (we) is outside the tree.
  const kept = await Resp.open(port);
  assert.equal(await kept.cmd('INCR', 'counter'), '2');
  await new Promise((r) => setTimeout(r, 100));

  const dir = cleanups.tempDir('ckpt-redis-img-');
  const d = dump(v.pid, { imagesDir: dir });
  assert.equal(d.warnings.length, 1, d.warnings.join('\n'));
  assert.match(d.warnings[0]!, new RegExp(`the TCP connection 127\\.0\\.0\\.1:${port} → 127\\.0\\.0\\.1:\\d+ goes to a peer outside the dump`));
  await waitGone(v.pid);
  const res = restore({ imagesDir: dir });
  const rv = wrapPid(res.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.deepEqual(res.warnings, []);

  const c2 = await Resp.open(port);
  assert.equal(await c2.cmd('GET', 'greeting'), 'hello');
  assert.equal(await c2.cmd('LINDEX', 'list', '2'), 'c');
  assert.equal(await c2.cmd('INCR', 'counter'), '3');
  // The kept connection resumes where it was.
  assert.equal(await kept.cmd('INCR', 'counter'), '4');
  assert.equal(await kept.cmd('GET', 'greeting'), 'hello');
  c2.close();
  kept.close();
  const c3 = await Resp.open(port);
  assert.equal(await c3.cmd('PING'), 'PONG');
  c3.close();
});

/**
 * Issue 11's case, with busy clients (tcp-lock.c): three send INCR on keys of their own
 * every millisecond over one connection each, whatever the answers, and a fourth opens
 * a new connection for each INCR (so the dump meets connections being set up, waiting
 * to be accepted and closing), while the server is dumped and restored. Without the
 * network lock an INCR the kernel acknowledged after the dump read the socket is never
 * executed and the client waits forever for its answer, or its next packet meets the
 * dead server's port and is reset; with it each client's answers go on :1, :2, :3…
 * with none missing or repeated (each client checks), none hangs, and the counters
 * hold exactly the answers.
 */
test('redis-server with busy clients sending INCR continuously: every acknowledged INCR runs exactly once', { skip: existsSync(REDIS) ? false : `${REDIS} is not installed` }, async () => {
  const port = await freePort();
  const v = startVictim(REDIS, { args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--loglevel', 'notice'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/Ready to accept connections/, 20_000);
  const clients = ['k0', 'k1', 'k2', 'churn'].map((key) =>
    startVictim('tcp-lock', { args: key === 'churn' ? ['churn', String(port), key] : ['client', String(port), '4', 'redis', key] }));
  for (const c of clients) cleanups.push(() => c.cleanup());
  for (const c of clients) await c.waitFor(/CONNECTED/);
  await new Promise((r) => setTimeout(r, 100));
  const dir = cleanups.tempDir('ckpt-redis-img-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const res = restore({ imagesDir: dir });
  const rv = wrapPid(res.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  await new Promise((r) => setTimeout(r, 200));
  for (const c of clients) kill(c.pid, SIG.SIGUSR1);
  const said = await Promise.all(clients.map(async (c) => (await c.waitFor(/^(PASS|FAIL).*$/m, 30_000))[0]));
  for (const s of said) assert.match(s, /^PASS \d+ answers$/, said.join('\n'));
  const c = await Resp.open(port);
  for (const [i, key] of ['k0', 'k1', 'k2', 'churn'].entries()) assert.equal(await c.cmd('GET', key), said[i]!.split(' ')[1], key);
  c.close();
});
