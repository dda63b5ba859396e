import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMapLine, parseMaps, readMaps, readMapsText } from './maps.js';
import { queryMaps } from './map-query.js';
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

// The regex parser the byte parser replaced: both must read every line alike.
const LINE = /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])([sp]) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+) ?(.*)$/;
function byRegex(line: string): unknown {
  const m = LINE.exec(line);
  if (m === null) return undefined;
  let path = (m[11] ?? '').replace(/^ +/, '');
  const deleted = path.endsWith(' (deleted)');
  if (deleted) path = path.slice(0, -10);
  return {
    start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), prot: { read: m[3] === 'r', write: m[4] === 'w', exec: m[5] === 'x' },
    shared: m[6] === 's', offset: BigInt(`0x${m[7]}`), dev: { major: parseInt(m[8]!, 16), minor: parseInt(m[9]!, 16) }, inode: Number(m[10]), path, deleted,
  };
}

test('the byte parser reads every line as the regex did, and refuses what it refused', () => {
  const lines = [...fixture('maps-cat.txt').split('\n'), ...fixture('maps-odd.txt').split('\n')].filter((l) => l !== '');
  const odd = [
    '7f00-7f01 rw-p 00000000 00:00 0', '7f00-7f01 rw-p 00000000 00:00 0 ', '7f00-7f01 rwxs 0000000000000000 fe:01 123   /a b (deleted)',
    'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]', '7F00-7f01 rw-p 00000000 00:00 0',
    '7f00-7f01 rw-q 00000000 00:00 0', '7f00-7f01 rw-p 00000000 00:00', '7f00-7f01 rw-p 00000000 0000 0', '7f00 7f01 rw-p 00000000 00:00 0',
    '-7f01 rw-p 00000000 00:00 0', '7f00-7f01 rwp 00000000 00:00 0', '7f00-7f01 rw-p 0 0:0 0x', '7f00-7f01 rw-p 0 0:0 12/x',
  ];
  for (const line of [...lines, ...odd]) assert.deepEqual(parseMapLine(line), byRegex(line), line);
});

test('readMaps with a filter: the executable areas, the area containing an address', () => {
  const all = readMaps(process.pid);
  const exec = readMaps(process.pid, { exec: true });
  assert.deepEqual(exec.map((m) => m.start), all.filter((m) => m.prot.read && m.prot.exec).map((m) => m.start));
  const stack = all.find((m) => m.path === '[stack]')!;
  assert.deepEqual(readMaps(process.pid, { containing: stack.start + 8n }), [stack]);
  assert.deepEqual(readMaps(process.pid, { containing: stack.end }).map((m) => m.start), all.filter((m) => m.start === stack.end).map((m) => m.start));
  assert.deepEqual(readMaps(process.pid, { containing: 0xffffffffff600800n }).map((m) => m.path), all.some((m) => m.path === '[vsyscall]') ? ['[vsyscall]'] : []);
});

test('readMaps by name: the areas of that file or special name only', () => {
  const all = readMaps(process.pid);
  assert.deepEqual(readMaps(process.pid, { path: '[stack]' }), all.filter((m) => m.path === '[stack]'));
  const lib = all.find((m) => m.path.startsWith('/') && m.prot.exec)!;
  assert.deepEqual(readMaps(process.pid, { path: lib.path, exec: true }).map((m) => m.start), all.filter((m) => m.path === lib.path && m.prot.read && m.prot.exec).map((m) => m.start));
  assert.deepEqual(readMaps(process.pid, { path: '/no/such/file' }), []);
});

test('readMaps after an address: the first area ending above it', () => {
  const all = readMaps(process.pid);
  const i = Math.floor(all.length / 2);
  const m = all[i]!;
  assert.deepEqual(readMaps(process.pid, { after: m.start }), [m]);
  // In the hole before the next area (or at its start): that next area.
  assert.deepEqual(readMaps(process.pid, { after: m.end }).map((e) => e.start), all.filter((e) => e.end > m.end).slice(0, 1).map((e) => e.start));
});

test('PROCMAP_QUERY answers as the text does (areas by address, by file, the vDSO)', () => {
  const all = readMaps(process.pid);
  const text = (e: { start: bigint }) => all.find((m) => m.start === e.start);
  // This kernel (6.18) has the ioctl: queryMaps must answer, not fall back. Files'
  // areas only: node's anonymous ones grow and merge while the test runs.
  const some = all.filter((m) => m.path.startsWith('/') || m.path === '[vdso]' || m.path === '[vvar]');
  for (const m of some) assert.deepEqual(queryMaps(process.pid, { containing: m.start }), [m], m.path);
  const lib = all.find((m) => m.path.startsWith('/') && m.prot.exec)!;
  const files = queryMaps(process.pid, { path: lib.path, exec: true })!;
  assert.ok(files.length > 0 && files.every((e) => e.prot.exec && e.path.startsWith('/') && text(e) !== undefined));
  const vdso = queryMaps(process.pid, { path: '[vdso]' })!;
  assert.deepEqual(vdso, all.filter((m) => m.path === '[vdso]'));
  assert.equal(queryMaps(process.pid, { containing: 0xffffffffff600800n }), undefined, 'the gate page is left to the text');
});

test('the text fallback keeps every area a filter asks for (a kernel without PROCMAP_QUERY)', () => {
  const all = readMapsText(process.pid, {});
  const lib = all.find((m) => m.path.startsWith('/') && m.prot.exec)!;
  const files = all.filter((m) => m.path.startsWith('/') && m.prot.read && m.prot.exec).map((m) => m.start);
  const kept = (filter: Parameters<typeof readMapsText>[1]) => readMapsText(process.pid, filter).map((m) => m.start);
  assert.ok(files.every((s) => kept({ exec: true, files: true }).includes(s)));
  assert.ok(kept({ path: lib.path, exec: true }).includes(lib.start));
  assert.ok(kept({ containing: lib.start + 1n }).includes(lib.start));
  assert.equal(kept({ after: lib.start })[0], lib.start);
  assert.ok(!kept({ after: lib.end }).includes(lib.start));
});
