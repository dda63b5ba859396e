/**
 * PostgreSQL as the machine has it (/usr/local/bin/postgres) with a client (pg-client.c,
 * its parent) inside an open transaction across dump and restore: COMMIT works after
 * restore, and new connections are accepted on the restored listeners. First in its
 * default configuration (TCP on localhost, 127.0.0.1 and ::1, plus the unix socket;
 * background workers; shared memory), the client on TCP; with CKPT_TEST_LONG=1 also
 * listening only on a unix socket in a temp dir. Skipped when postgres is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { killQuietly, startVictim, waitGone } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const POSTGRES = '/usr/local/bin/postgres';
const INITDB = '/usr/local/bin/initdb';

function postgresUser(): { uid: number; gid: number } | undefined {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  return r.status === 0 && g.status === 0 ? { uid: Number(r.stdout), gid: Number(g.stdout) } : undefined;
}

const user = postgresUser();
const skip = !existsSync(POSTGRES) || !existsSync(INITDB) ? `${POSTGRES} or ${INITDB} is absent` : !user ? 'no postgres user' : false;

const LONG = process.env['CKPT_TEST_LONG'] === '1';

function listenAny(host: string): Promise<Server> {
  const s = createServer();
  return new Promise((ok, fail) => s.once('error', fail).listen({ host, port: 0 }, () => ok(s)));
}

/** A TCP port free on localhost now (v4 and v6 where there is IPv6), for the server's -p. */
async function freePort(): Promise<number> {
  const s = await listenAny('::').catch(() => listenAny('127.0.0.1'));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function pgRoundTrip(opts: { tcpPort?: number }): Promise<void> {
  const base = cleanups.tempDir('ckpt-pg-');
  const data = join(base, 'data');
  const sock = join(base, 'sock');
  mkdirSync(sock);
  chownSync(base, user!.uid, user!.gid);
  chownSync(sock, user!.uid, user!.gid);
  const init = spawnSync(INITDB, ['-N', '-A', 'trust', '-U', 'postgres', '-D', data], { uid: user!.uid, gid: user!.gid, encoding: 'utf8' });
  assert.equal(init.status, 0, init.stderr);

  const port = opts.tcpPort === undefined ? [] : [String(opts.tcpPort)];
  const v = startVictim('pg-client', { args: [sock, data, String(user!.uid), String(user!.gid), ...port] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ server=(\d+)/, 30000);
  const server = Number(m[1]);
  cleanups.push(() => killQuietly([server]));
  const dir = cleanups.tempDir('ckpt-pg-img-');
  const r = dump(v.pid, { imagesDir: dir });
  assert.ok(r.processes >= 6, `${r.processes} processes dumped`);
  // The server's children are reparented to us (a subreaper): reaped here, their PIDs free.
  for (const pid of r.pids) await waitGone(pid);
  const mark = v.output().length;
  restore({ imagesDir: dir });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/, 20000);
  const out = v.output().slice(mark);
  assert.doesNotMatch(out, /FAIL/, out);
  assert.match(out, /DONE fails=0/, out);
  assert.equal(out.match(/^PASS /gm)?.length, opts.tcpPort === undefined ? 3 : 5, out);
}

test('PostgreSQL in its default configuration (TCP and unix socket): a TCP session in an open transaction commits after restore', { skip }, async () => {
  await pgRoundTrip({ tcpPort: await freePort() });
});

test('PostgreSQL on a unix socket only: a session in an open transaction commits after restore', { skip: skip || (LONG ? false : 'CKPT_TEST_LONG=1 only') }, async () => {
  await pgRoundTrip({});
});
