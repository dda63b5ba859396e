/**
 * python3's http.server (a real program: the CPython interpreter, a thread per
 * connection) with a keep-alive client (tcp-lock.c "http", outside the dumped tree)
 * that asks for a file again and again over one HTTP/1.1 connection while the server
 * is dumped and restored: the client gets every answer, whole and once, on the same
 * connection, and the server's log lists every request exactly once. Skipped when
 * /usr/bin/python3 is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { freePort } from '../helpers/tcp.js';

const PYTHON = '/usr/bin/python3';
const cleanups = useCleanups();


test('python3 -m http.server with a keep-alive client: every request answered exactly once', { skip: existsSync(PYTHON) ? false : `${PYTHON} is not installed` }, async () => {
  const root = cleanups.tempDir('ckpt-http-root-');
  writeFileSync(join(root, 'hello.txt'), 'hello from before the dump\n');
  const port = await freePort();
  const v = startVictim(PYTHON, { args: ['-u', '-m', 'http.server', '--protocol', 'HTTP/1.1', '--bind', '127.0.0.1', String(port)], cwd: root });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/Serving HTTP/, 20_000);
  const client = startVictim('tcp-lock', { args: ['http', String(port), '/hello.txt', 'hello from before the dump\n'] });
  cleanups.push(() => client.cleanup());
  await client.waitFor(/CONNECTED/);
  await v.waitFor(/GET \/hello\.txt\?n=20 /);
  const dir = cleanups.tempDir('ckpt-http-img-');
  const d = dump(v.pid, { imagesDir: dir });
  // The client's connection: its peer is outside the tree.
  assert.equal(d.warnings.length, 1, d.warnings.join('\n'));
  await waitGone(v.pid);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  // 20 more requests after the restore, then the client stops.
  const before = Math.max(...[...rv.output().matchAll(/\?n=(\d+) /g)].map((m) => Number(m[1])));
  await rv.waitFor(new RegExp(`GET /hello\\.txt\\?n=${before + 20} `));
  kill(client.pid, SIG.SIGUSR1);
  const said = (await client.waitFor(/^(PASS|FAIL).*$/m, 30_000))[0];
  assert.match(said, /^PASS \d+ answers$/, `${said}\n${rv.output().slice(-1500)}`);
  const n = Number(said.split(' ')[1]);
  const logged = [...rv.output().matchAll(/"GET \/hello\.txt\?n=(\d+) HTTP\/1\.1" 200/g)].map((m) => Number(m[1]));
  // The server may have read the last request after the client counted: at most one more.
  assert.deepEqual(logged.slice(0, n), Array.from({ length: n }, (_, i) => i + 1));
  assert.ok(logged.length <= n + 1, `${logged.length} requests logged for ${n} answers`);
});
