/**
 * A unix socket peer outside the dump (unix-ext.c): a client's stream and datagram
 * sockets connected to a server that is not dumped. Refused by name without
 * --ext-unix-sk; with it (at dump and at restore) the client's sockets are connected to
 * the server's names again and talk to it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('sockets connected outside the dump: refused, or connected again with --ext-unix-sk', async () => {
  const sockDir = cleanups.tempDir('ckpt-unix-ext-');
  const server = startVictim('unix-ext', { args: ['server', sockDir] });
  cleanups.push(() => server.cleanup());
  await server.waitFor(/READY/);
  const v = startVictim('unix-ext', { args: ['client', sockDir] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);

  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-unix-ext-img-') }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'UNSUPPORTED', e.message);
    assert.match(e.message, /its peer socket:\[\d+\] \(.*\/srv\.sock\) is outside the dump \(--ext-unix-sk/);
    return true;
  });
  assert.ok(v.alive());

  const dir = cleanups.tempDir('ckpt-unix-ext-img-');
  dump(v.pid, { imagesDir: dir, extUnixSk: true });
  await waitGone(v.pid);
  assert.throws(() => restore({ imagesDir: dir }), /outside the dump: restore with --ext-unix-sk/);
  await waitGone(v.pid, 5000);
  const mark = v.output().length;
  const serverMark = server.output().length;
  restore({ imagesDir: dir, extUnixSk: true });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/, 10000);
  const out = v.output().slice(mark);
  assert.doesNotMatch(out, /FAIL/, out);
  assert.match(out, /DONE fails=0/, out);
  // The client has talked through its new connection: the server accepted it from the restored client, not from ckpt.
  assert.match(server.output().slice(serverMark), new RegExp(`ACCEPTED peer=${v.pid} uid=0\n`));
});
