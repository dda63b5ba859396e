import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import type { FdFacts } from './facts.js';
import { devName } from './facts.js';
import { reopenFlags, O } from './flags.js';
import { chooseRule, RULES } from './registry.js';

const S = constants;
const mkdev = (maj: number, min: number) => (maj << 8) | min;

function facts(fd: number, link: string, stat: Partial<FdFacts['stat']> = {}): FdFacts {
  return {
    pid: 100, fd, link, flags: 0o100000, pos: 0n,
    stat: { mode: S.S_IFREG | 0o644, rdev: 0, nlink: 1, size: 10, dev: 1, ino: 2, ...stat },
  };
}

test('the registry picks a kind from the link and the inode', () => {
  const cases: [FdFacts, string][] = [
    [facts(7, '/var/log/app.log'), 'regular'],
    [facts(9, '/tmp/gone.txt (deleted)', { nlink: 0 }), 'deleted'],
    [facts(9, '/tmp/#123 (deleted)', { nlink: 0 }), 'deleted'], // O_TMPFILE
    [facts(9, '/tmp/renamed (deleted)', { nlink: 2 }), 'other-link'], // this name gone, another link lives
    [facts(4, '/memfd:buf (deleted)', { nlink: 0 }), 'memfd'],
    [facts(14, '/home/me', { mode: S.S_IFDIR | 0o755 }), 'directory'],
    [facts(5, '/dev/null', { mode: S.S_IFCHR | 0o666, rdev: mkdev(1, 3) }), 'char-device'],
    [facts(0, '/dev/null', { mode: S.S_IFCHR | 0o666, rdev: mkdev(1, 3) }), 'char-device'],
    [facts(0, '/dev/pts/3', { mode: S.S_IFCHR | 0o620, rdev: mkdev(136, 3) }), 'std-tty'],
    [facts(2, '/dev/tty1', { mode: S.S_IFCHR | 0o620, rdev: mkdev(4, 1) }), 'std-tty'],
    [facts(5, '/dev/pts/3', { mode: S.S_IFCHR | 0o620, rdev: mkdev(136, 3) }), 'tty'],
    [facts(4, '/dev/ptmx', { mode: S.S_IFCHR | 0o666, rdev: mkdev(5, 2) }), 'pty-master'],
    [{ ...facts(0, '/dev/pts/3', { mode: S.S_IFCHR | 0o620, rdev: mkdev(136, 3) }), ptyMasters: new Map([[3, { pid: 1, fd: 4 }]]) }, 'pty-slave'],
    [{ ...facts(5, '/dev/pts/3', { mode: S.S_IFCHR | 0o620, rdev: mkdev(136, 3) }), ptyMasters: new Map([[4, { pid: 1, fd: 4 }]]) }, 'tty'],
    [facts(3, '/dev/tty', { mode: S.S_IFCHR | 0o666, rdev: mkdev(5, 0) }), 'dev-tty'],
    [facts(1, 'pipe:[123]', { mode: S.S_IFIFO | 0o600 }), 'std-other'],
    [facts(2, 'socket:[77]', { mode: S.S_IFSOCK | 0o777 }), 'std-other'],
    [facts(3, 'pipe:[123]', { mode: S.S_IFIFO | 0o600 }), 'pipe'],
    [facts(3, 'socket:[77]', { mode: S.S_IFSOCK | 0o777 }), 'socket'],
    [facts(3, '/run/fifo', { mode: S.S_IFIFO | 0o600 }), 'fifo'],
    [facts(3, 'anon_inode:[eventfd]', { mode: 0o600 }), 'eventfd'],
    [facts(3, 'anon_inode:[eventpoll]', { mode: 0o600 }), 'epoll'],
    [facts(3, 'anon_inode:inotify', { mode: 0o600 }), 'inotify'],
    [facts(3, 'anon_inode:[fanotify]', { mode: 0o600 }), 'fanotify'],
    [facts(3, 'anon_inode:[pidfd]', { mode: 0o600 }), 'pidfd'],
    [facts(3, 'anon_inode:[userfaultfd]', { mode: 0o600 }), 'userfaultfd files'],
    [facts(3, 'anon_inode:[io_uring]', { mode: 0o600 }), 'io_uring instances'],
    [facts(3, 'anon_inode:bpf-prog', { mode: 0o600 }), 'BPF objects'],
    [facts(3, 'anon_inode:bpf_link', { mode: 0o600 }), 'BPF objects'],
    [facts(3, 'anon_inode:[perf_event]', { mode: 0o600 }), 'perf_event files'],
    [facts(3, 'anon_inode:seccomp notify', { mode: 0o600 }), 'seccomp user notification listeners'],
    [facts(3, 'anon_inode:[some-new-kind]', { mode: 0o600 }), 'anon-inode'],
    [facts(3, '/dev/sda', { mode: S.S_IFBLK | 0o660, rdev: mkdev(8, 0) }), 'block-device'],
  ];
  for (const [f, name] of cases) assert.equal(chooseRule(f).name, name, f.link);
});

test('unsupported kinds refuse with a message naming the kind and the fd', () => {
  const dump = (f: FdFacts) => chooseRule(f).dump({} as never, f);
  assert.throws(() => dump(facts(3, '/dev/sda', { mode: S.S_IFBLK, rdev: mkdev(8, 0) })), {
    code: 'UNSUPPORTED',
    message: 'Cannot dump fd 3 of process 100: block devices are not supported yet (/dev/sda)',
  });
  assert.throws(() => dump(facts(6, 'anon_inode:[some-new-kind]', { mode: 0o600 })), {
    message: 'Cannot dump fd 6 of process 100: some-new-kind files are not supported yet (anon_inode:[some-new-kind])',
  });
  assert.equal(RULES.at(-1)!.match(facts(3, 'weird:[1]')), true, 'the last rule catches everything');
  assert.throws(() => dump(facts(3, '/dev/console', { mode: S.S_IFCHR, rdev: mkdev(5, 1) })), {
    code: 'UNSUPPORTED',
    message: 'Cannot dump fd 3 of process 100: it is the system console (/dev/console), which cannot be checkpointed',
  });
  assert.throws(() => dump(facts(3, '/dev/tty2', { mode: S.S_IFCHR, rdev: mkdev(4, 2) })), { message: /a virtual console \(\/dev\/tty2\)/ });
  assert.throws(() => dump(facts(3, '/dev/ttyS0', { mode: S.S_IFCHR, rdev: mkdev(4, 64) })), { message: /a serial line/ });
  assert.throws(() => dump(facts(3, '/dev/pts/9', { mode: S.S_IFCHR, rdev: mkdev(136, 9) })), { message: /its pty \/dev\/pts\/9 has its master outside the dumped tree/ });
});

test('reopen flags keep access mode and status flags, drop creation flags', () => {
  const tmpfile = O.TMPFILE_BIT | O.DIRECTORY | O.LARGEFILE | O.RDWR; // fdinfo of an O_TMPFILE fd
  assert.equal(reopenFlags(tmpfile, { directory: false }), O.LARGEFILE | O.RDWR | O.NOCTTY);
  const log = O.WRONLY | O.APPEND | O.CLOEXEC | O.CREAT | O.TRUNC;
  assert.equal(reopenFlags(log, { directory: false }), O.WRONLY | O.APPEND | O.CLOEXEC | O.NOCTTY);
  assert.equal(reopenFlags(O.RDONLY | O.NONBLOCK, { directory: true }), O.NONBLOCK | O.DIRECTORY | O.NOCTTY);
});

test('device numbers decode as glibc major()/minor() do', () => {
  assert.equal(devName(mkdev(1, 3)), '1:3');
  assert.equal(devName(mkdev(136, 3)), '136:3');
  // minor 256+ and major 4096+ use the high bits: makedev(4097, 300)
  const big = Number((4097n & 0xfffn) << 8n | (4097n & ~0xfffn) << 32n | (300n & 0xffn) | (300n & ~0xffn) << 12n);
  assert.equal(devName(big), '4097:300');
});
