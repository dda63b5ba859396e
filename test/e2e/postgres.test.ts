/**
 * PostgreSQL as the machine has it (/usr/local/bin/postgres), listening only on a unix
 * socket in a temp dir, with a client (pg-client.c, its parent) inside an open
 * transaction across dump and restore: COMMIT works after restore, and a new connection
 * is accepted on the restored listener. Skipped when postgres is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync } from 'node:fs';
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

test('a PostgreSQL session in an open transaction commits after restore', { skip }, async () => {
  const base = cleanups.tempDir('ckpt-pg-');
  const data = join(base, 'data');
  const sock = join(base, 'sock');
  mkdirSync(sock);
  chownSync(base, user!.uid, user!.gid);
  chownSync(sock, user!.uid, user!.gid);
  const init = spawnSync(INITDB, ['-N', '-A', 'trust', '-U', 'postgres', '-D', data], { uid: user!.uid, gid: user!.gid, encoding: 'utf8' });
  assert.equal(init.status, 0, init.stderr);

  const v = startVictim('pg-client', { args: [sock, data, String(user!.uid), String(user!.gid)] });
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
});
