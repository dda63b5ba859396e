import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bigintReplacer } from '../../images/bigint.js';
import { files } from './index.js';
import type { FilesState } from './schema.js';

const state: FilesState = {
  fds: [
    { kind: 'inherit', fd: 0, link: '/dev/pts/3', tty: true },
    { kind: 'reg', fd: 1, flags: 0o100001, pos: 123n, path: '/tmp/out.log', size: 123n },
    { kind: 'dup', fd: 2, of: 1, cloexec: false },
    { kind: 'chr', fd: 3, flags: 0o100000, pos: 0n, path: '/dev/null', rdev: 259 },
    { kind: 'reg', fd: 7, flags: 0o2102001, pos: (1n << 40n) + 5n, path: '/var/log/app.log', size: 1n << 41n },
    { kind: 'deleted', fd: 9, flags: 0o100002, pos: 1500n, path: '/tmp/gone.txt', blob: 'fd-1-9.deleted', mode: 0o640, uid: 1000, gid: 100, size: 3000n },
    { kind: 'dir', fd: 14, flags: 0o2304000, pos: 0n, path: '/home/me', desc: 14 },
    { kind: 'pipe', fd: 15, flags: 0o4000, ino: 4321, desc: 15 },
    { kind: 'pipe', fd: 16, flags: 0o1, ino: 4321, desc: 16 },
    { kind: 'fifo', fd: 17, flags: 0o2, path: '/tmp/f', dev: 64769, ino: 99, desc: 17 },
    { kind: 'unix', fd: 18, flags: 0o4002, ino: 500, desc: 18 },
    { kind: 'unix', fd: 19, flags: 0o2, ino: 501, desc: 19 },
  ],
  pipes: [
    { id: 'pipe:4321', capacity: 131072, data: { size: 3, data: 'YWJj' } },
    { id: 'fifo:64769:99', capacity: 65536, data: { size: 100000, blob: 'fd-1-fifo.pipe' } },
  ],
  unix: [
    { ino: 500, peer: 501, type: 2, sndbuf: 212992, rcvbuf: 212992, lengths: [1, 2], data: { size: 3, data: 'YWJj' } },
    { ino: 501, peer: 500, type: 2, sndbuf: 212992, rcvbuf: 212992, lengths: [], data: { size: 0, data: '' } },
  ],
};

const viaJson = (v: unknown) => JSON.parse(JSON.stringify(v, bigintReplacer)) as unknown;

test('a files state survives JSON and the schema unchanged', () => {
  assert.deepEqual(files.schema.parse(viaJson(state)), state);
});

test('the schema refuses what a tampered image could carry', () => {
  const withFd = (patch: Record<string, unknown>, at = 4) =>
    viaJson({ fds: state.fds.map((e, i) => (i === at ? { ...e, ...patch } : e)) });
  const bad: [string, unknown][] = [
    ['relative path', withFd({ path: 'etc/passwd' })],
    ['NUL in path', withFd({ path: '/tmp/a\0b' })],
    ['duplicate fd', withFd({ fd: 1 })],
    ['negative fd', withFd({ fd: -1 })],
    ['offset not an integer', withFd({ pos: '1e3' })],
    ['unknown kind', withFd({ kind: 'pipe' })],
    ['dup of a later fd', withFd({ of: 9 }, 2)],
    ['blob name with a slash', withFd({ blob: '../../etc/shadow' }, 5)],
    ['mode beyond permission bits', withFd({ mode: 0o100644 }, 5)],
    ['inherit above fd 2', withFd({ fd: 4 }, 0)],
    ['pipe end without its pipe', withFd({ ino: 1 }, 7)],
    ['socket without its object', withFd({ ino: 7 }, 10)],
    ['message lengths that do not add up', viaJson({ ...state, unix: [{ ...state.unix![0]!, lengths: [5] }, state.unix![1]] })],
    ['payload with both data and blob', viaJson({ ...state, pipes: [{ ...state.pipes![0]!, data: { size: 3, data: 'YWJj', blob: 'x' } }, state.pipes![1]] })],
  ];
  for (const [why, value] of bad) assert.equal(files.schema.safeParse(value).success, false, why);
});
