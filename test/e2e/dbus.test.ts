/**
 * dbus-daemon, a real program that holds a NETLINK_AUDIT socket (to send AVC and
 * user records) beside its listening unix socket and an epoll loop: after dump and
 * restore it answers with the same bus id and takes new clients. Skipped when
 * dbus-daemon or dbus-send is not installed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { closeFd, getsockoptInt, SOL_SOCKET } from '../../src/sys/index.js';
import { grabFd } from '../../src/resources/transfer.js';
import { startVictim, waitGone } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { sleep } from '../helpers/interrupt.js';

const cleanups = useCleanups();
const DAEMON = '/usr/bin/dbus-daemon';
const SEND = '/usr/bin/dbus-send';

function call(address: string, method: string): string {
  const r = spawnSync(SEND, ['--session', '--print-reply', '--dest=org.freedesktop.DBus', '/', `org.freedesktop.DBus.${method}`], {
    env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: address },
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.equal(r.status, 0, `dbus-send ${method}: ${r.stderr}`);
  return r.stdout;
}

test('dbus-daemon (with its NETLINK_AUDIT socket) answers with the same bus id after restore and takes new clients', async (t) => {
  if (!existsSync(DAEMON) || !existsSync(SEND)) return t.skip('dbus-daemon or dbus-send is not installed');
  const dir = cleanups.tempDir('ckpt-dbus-');
  const address = `unix:path=${join(dir, 'bus')}`;
  const v = startVictim(DAEMON, { args: ['--session', `--address=${address}`, '--nofork', '--nopidfile'] });
  cleanups.push(() => v.cleanup());
  for (let i = 0; i < 500 && !existsSync(join(dir, 'bus')); i++) await sleep(20);
  const id = /string "([0-9a-f]+)"/.exec(call(address, 'GetId'))?.[1];
  assert.ok(id, 'the bus has an id');

  const audit = readdirSync(`/proc/${v.pid}/fd`).filter((fd) => {
    // The daemon may close the connection of the dbus-send above meanwhile.
    let local: number;
    try {
      if (!readlinkSync(`/proc/${v.pid}/fd/${fd}`).startsWith('socket:')) return false;
      local = grabFd(v.pid, Number(fd));
    } catch {
      return false;
    }
    try {
      return getsockoptInt(local, SOL_SOCKET, 39 /* SO_DOMAIN */) === 16 && getsockoptInt(local, SOL_SOCKET, 38 /* SO_PROTOCOL */) === 9;
    } finally {
      closeFd(local);
    }
  });
  if (audit.length === 0) return t.skip('this dbus-daemon opened no NETLINK_AUDIT socket (built without audit support)');

  const images = cleanups.tempDir('ckpt-dbus-img-');
  dump(v.pid, { imagesDir: images });
  await waitGone(v.pid);
  restore({ imagesDir: images });
  assert.equal(/string "([0-9a-f]+)"/.exec(call(address, 'GetId'))?.[1], id, 'the same bus id');
  assert.match(call(address, 'ListNames'), /string "org\.freedesktop\.DBus"/);
  assert.ok(existsSync(`/proc/${v.pid}`), 'the daemon runs on');
});
