import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listFds, parseFdinfo, readFdinfo, readFdLink } from './fdinfo.js';
import { closeSync, openSync, readFileSync } from 'node:fs';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

test('regular file: pos, octal flags (O_CLOEXEC|O_LARGEFILE), mnt_id, ino', () => {
  const f = parseFdinfo(fixture('fdinfo-regular.txt'));
  assert.deepEqual(f, { pos: 3n, flags: 0o2100000, mntId: 27, ino: 612, extra: {}, lines: [] });
});

test('eventfd: odd spacing and space-separated keys land in extra', () => {
  const f = parseFdinfo(fixture('fdinfo-eventfd.txt'));
  assert.equal(f.flags, 0o4002);
  assert.deepEqual(f.extra, { 'eventfd-count': '5', 'eventfd-id': '10', 'eventfd-semaphore': '0' });
});

test('epoll: one raw "tfd:" line per watched fd', () => {
  const f = parseFdinfo(fixture('fdinfo-epoll.txt'));
  assert.equal(f.lines.length, 2);
  assert.match(f.lines[0] ?? '', /^tfd:\s+3 events:\s+19 data:\s+3\s+pos:0 ino:40e sdev:10$/);
  assert.match(f.lines[1] ?? '', /events: 80000019/);
  assert.deepEqual(f.extra, {});
});

test('timerfd, signalfd, inotify, socket, memfd, pipe', () => {
  const t = parseFdinfo(fixture('fdinfo-timerfd.txt'));
  assert.deepEqual(t.extra, {
    clockid: '1', ticks: '0', 'settime flags': '00', it_value: '(99, 999977144)', it_interval: '(1, 0)',
  });
  assert.equal(parseFdinfo(fixture('fdinfo-signalfd.txt')).extra['sigmask'], '0000000000004200');
  const ino = parseFdinfo(fixture('fdinfo-inotify.txt'));
  assert.equal(ino.flags, 0);
  assert.match(ino.lines[0] ?? '', /^inotify wd:1 ino:3f7e8 sdev:fe00000 mask:100 /);
  assert.equal(parseFdinfo(fixture('fdinfo-socket.txt')).extra['scm_fds'], '0');
  assert.equal(parseFdinfo(fixture('fdinfo-memfd.txt')).mntId, 0, 'memfds report mnt_id 0 here');
  assert.equal(parseFdinfo(fixture('fdinfo-pipe.txt')).ino, 7391);
});

test('file locks are kept as raw lines; missing ino and a 64-bit pos are fine', () => {
  const f = parseFdinfo(fixture('fdinfo-locks.txt'));
  assert.equal(f.lines.length, 2);
  assert.match(f.lines[1] ?? '', /FLOCK/);
  const old = parseFdinfo(fixture('fdinfo-old.txt'));
  assert.equal(old.pos, 0xffffffffffffffffn);
  assert.equal(old.ino, undefined);
  assert.throws(() => parseFdinfo('flags:\t0\n'), { name: 'CkptError', code: 'INTERNAL' });
});

test('listFds, readFdLink and readFdinfo on self', () => {
  const fd = openSync('/etc/hostname', 'r');
  try {
    const fds = listFds(process.pid);
    assert.ok(fds.includes(fd));
    assert.deepEqual(fds, [...fds].sort((a, b) => a - b));
    assert.equal(readFdLink(process.pid, fd), '/etc/hostname');
    const info = readFdinfo(process.pid, fd);
    assert.equal(info.pos, 0n);
    assert.equal(info.flags & 3, 0, 'O_RDONLY');
  } finally {
    closeSync(fd);
  }
  assert.throws(() => readFdinfo(process.pid, 99999), { code: 'ENOENT' }, 'a closed fd of a live process stays ENOENT');
});
