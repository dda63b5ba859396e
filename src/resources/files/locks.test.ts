import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FdFacts } from './facts.js';
import { LockCollector } from './locks.js';

const facts = (fd: number, locks: string[]): FdFacts => ({
  pid: 100, fd, link: '/x', flags: 2, pos: 0n, locks, stat: { mode: 0o100644, rdev: 0, nlink: 1, size: 0, dev: 1, ino: 2 },
});
const posix = 'lock:\t1: POSIX  ADVISORY  WRITE 100 fe:00:2 10 14';
const flock = 'lock:\t1: FLOCK  ADVISORY  READ 7 fe:00:2 0 EOF';

test('each lock is saved once, through the first fd of its description', () => {
  const c = new LockCollector();
  c.add(facts(3, [flock, posix]), { via: 3, restored: true });
  c.add(facts(4, [flock, posix]), { via: 3, restored: true }); // a dup of 3
  c.add(facts(5, [posix]), { via: 5, restored: true }); // another description, same file: the process's lock again
  assert.deepEqual(c.locks, [
    { kind: 'flock', fd: 3, type: 'read', start: 0n },
    { kind: 'posix', fd: 3, type: 'write', start: 10n, end: 14n },
  ]);
});

test('locks that cannot be restored are refused, naming them', () => {
  const refuse = (line: string, restored = true) => () => new LockCollector().add(facts(3, [line]), { via: 3, restored });
  assert.throws(refuse('lock:\t1: LEASE  BREAKING  UNLCK 100 fe:00:2 0 EOF'), {
    code: 'UNSUPPORTED', message: 'Cannot dump fd 3 of process 100: it holds a LEASE BREAKING UNLCK lock on bytes 0-EOF, which cannot be restored (the lease is being broken)',
  });
  assert.throws(refuse('lock:\t1: DELEG  ACTIVE    READ 100 fe:00:2 0 EOF'), /an unknown kind of lock/);
  assert.throws(refuse('lock:\t1: POSIX  ADVISORY  WRITE 101 fe:00:2 0 EOF'), /taken by process 101, which shares this fd table/);
  assert.throws(refuse(flock, false), /flock read lock, but the fd is inherited at restore/);
});
