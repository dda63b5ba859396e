import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMaps, readMaps } from './maps.js';
import { readFileSync } from 'node:fs';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

test('maps of cat on 6.18: files, heap, anonymous, vvar/vvar_vclock/vdso, vsyscall', () => {
  const maps = parseMaps(fixture('maps-cat.txt'));
  assert.equal(maps.length, 38);
  assert.deepEqual(maps[0], {
    start: 0x56541e467000n,
    end: 0x56541e469000n,
    prot: { read: true, write: false, exec: false },
    shared: false,
    offset: 0n,
    dev: { major: 0xfe, minor: 0 },
    inode: 260131,
    path: '/usr/bin/cat',
    deleted: false,
  });
  assert.equal(maps[1]?.prot.exec, true);
  assert.equal(maps[5]?.path, '[heap]');
  assert.equal(maps[6]?.path, '', 'anonymous area: trailing space only');
  assert.equal(maps.find((m) => m.path.endsWith('gconv-modules.cache'))?.shared, true);
  const names = maps.filter((m) => m.path.startsWith('[')).map((m) => m.path);
  assert.deepEqual(names, ['[heap]', '[vvar]', '[vvar_vclock]', '[vdso]', '[stack]', '[vsyscall]']);
  const vdso = maps.find((m) => m.path === '[vdso]');
  const vvar = maps.find((m) => m.path === '[vvar]');
  assert.equal((vdso?.start ?? 0n) - (vvar?.start ?? 0n), 0x6000n, 'vvar sits 0x6000 below the vDSO');
});

test('odd maps: spaces in paths, (deleted), [anon:name], big device and inode, 64-bit addresses', () => {
  const maps = parseMaps(fixture('maps-odd.txt'));
  assert.equal(maps[0]?.path, '/tmp/dir with spaces/my prog');
  assert.equal(maps[1]?.offset, 0x1000n);
  assert.deepEqual([maps[2]?.path, maps[2]?.deleted, maps[2]?.shared], ['/memfd:shm ring', true, true]);
  assert.deepEqual([maps[3]?.path, maps[3]?.deleted], ['/tmp/gone.so', true]);
  assert.equal(maps[4]?.path, '[anon:my arena]');
  assert.deepEqual([maps[5]?.path, maps[5]?.prot], ['', { read: false, write: false, exec: false }]);
  assert.deepEqual(maps[7]?.dev, { major: 0x103, minor: 0x0a });
  assert.equal(maps[7]?.inode, 4294967296);
  assert.equal(maps[7]?.path, '/dev/sda weird');
  assert.equal(maps[9]?.path, '[vvar_vclock]');
  const vsys = maps.at(-1);
  assert.equal(vsys?.start, 0xffffffffff600000n);
  assert.equal(vsys?.end, 0xffffffffff601000n);
  assert.equal(vsys?.path, '[vsyscall]');
});

test('a line that is not a maps line is refused', () => {
  assert.throws(() => parseMaps('hello world\n'), { name: 'CkptError', code: 'INTERNAL' });
});

test('readMaps(self) contains the node executable and the stack', () => {
  const maps = readMaps(process.pid);
  assert.ok(maps.some((m) => m.path === process.execPath || m.path.endsWith('/node')));
  assert.ok(maps.some((m) => m.path === '[stack]'));
  for (const m of maps) assert.ok(m.start < m.end);
});
