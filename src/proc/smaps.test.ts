import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSmaps, readSmaps } from './smaps.js';
import { readMaps } from './maps.js';
import { readFileSync } from 'node:fs';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

test('smaps of cat: same areas as maps, VmFlags as a list', () => {
  const smaps = parseSmaps(fixture('smaps-cat.txt'));
  assert.equal(smaps.length, 38);
  const first = smaps[0];
  assert.equal(first?.path, '/usr/bin/cat');
  assert.deepEqual(first?.vmFlags, ['rd', 'mr', 'mw', 'me']);
  const heap = smaps.find((s) => s.path === '[heap]');
  assert.ok(heap?.vmFlags.includes('wr'));
  assert.equal(first?.end, first!.start + 8192n);
  assert.deepEqual(smaps.map((s) => s.start), [...smaps.map((s) => s.start)].sort((a, b) => (a < b ? -1 : 1)));
});

test('odd smaps: large kB values, unknown fields, ProtectionKey, [vsyscall]', () => {
  const [arena, vsys] = parseSmaps(fixture('smaps-odd.txt'));
  assert.deepEqual(arena?.vmFlags, ['rd', 'wr', 'mr', 'mw', 'me', 'ac']);
  assert.equal(vsys?.start, 0xffffffffff600000n);
  assert.deepEqual(vsys?.vmFlags, ['ex']);
});

test('readSmaps(self): the same areas as maps, each with some VmFlags', () => {
  const smaps = readSmaps(process.pid);
  assert.ok(smaps.some((s) => s.path === '[stack]' && s.vmFlags.includes('gd')));
  for (const s of smaps) assert.ok(s.vmFlags.length > 0);
  const maps = readMaps(process.pid);
  // Node may map or unmap between the two reads; most areas are the same.
  const starts = new Set(maps.map((m) => m.start));
  assert.ok(smaps.filter((s) => starts.has(s.start)).length > smaps.length * 0.9);
});

test('a field line before any area is refused', () => {
  assert.throws(() => parseSmaps('Size: 4 kB\n'), /smaps/);
});

test('smaps read in pieces of any size parses the same (records cut anywhere)', () => {
  for (const name of ['smaps-cat.txt', 'smaps-odd.txt']) {
    const whole = parseSmaps(fixture(name));
    for (const piece of [1, 7, 64, 300, 4096]) assert.deepEqual(parseSmaps(fixture(name), piece), whole, `${name} in pieces of ${piece}`);
  }
});

test('an area without VmFlags, or a field with a dash, goes line by line and loses nothing', () => {
  const text = [
    '1000-2000 rw-p 00000000 00:00 0 ',
    'Size:                  4 kB',
    'Some-New-Field:        1',
    'VmFlags: rd wr',
    '2000-3000 r--p 00000000 00:00 0 ',
    'Size:                  4 kB',
    '3000-4000 r-xp 00000000 00:00 0 ',
    'Size:                  4 kB',
    'VmFlags: rd ex',
    '',
  ].join('\n');
  for (const piece of [Infinity, 5, 40]) {
    const areas = parseSmaps(text, piece);
    assert.deepEqual(areas.map((a) => [a.start, a.vmFlags]), [[0x1000n, ['rd', 'wr']], [0x2000n, []], [0x3000n, ['rd', 'ex']]], `pieces of ${piece}`);
  }
});
