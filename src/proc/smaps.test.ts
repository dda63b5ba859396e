import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSmaps, readSmaps } from './smaps.js';
import { readFileSync } from 'node:fs';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

test('smaps of cat: same areas as maps, sizes in bytes, VmFlags as a list', () => {
  const smaps = parseSmaps(fixture('smaps-cat.txt'));
  assert.equal(smaps.length, 38);
  const first = smaps[0];
  assert.equal(first?.path, '/usr/bin/cat');
  assert.equal(first?.sizes['Size'], 8 * 1024);
  assert.equal(first?.sizes['Rss'], 8 * 1024);
  assert.equal(first?.sizes['Private_Clean'], 8 * 1024);
  assert.equal(first?.sizes['Swap'], 0);
  assert.equal(first?.other['THPeligible'], 0);
  assert.deepEqual(first?.vmFlags, ['rd', 'mr', 'mw', 'me']);
  const heap = smaps.find((s) => s.path === '[heap]');
  assert.ok(heap?.vmFlags.includes('wr'));
  for (const s of smaps) assert.equal(s.sizes['Size'], Number(s.end - s.start));
});

test('odd smaps: large kB values, unknown fields, ProtectionKey, [vsyscall]', () => {
  const [arena, vsys] = parseSmaps(fixture('smaps-odd.txt'));
  assert.equal(arena?.sizes['Swap'], 4194304 * 1024);
  assert.equal(arena?.other['ProtectionKey'], 3);
  assert.equal(arena?.sizes['Some_Future_Thing'], undefined);
  assert.deepEqual(arena?.vmFlags, ['rd', 'wr', 'mr', 'mw', 'me', 'ac']);
  assert.equal(vsys?.start, 0xffffffffff600000n);
  assert.deepEqual(vsys?.vmFlags, ['ex']);
});

test('readSmaps(self): every area has a Size equal to its length and some VmFlags', () => {
  const smaps = readSmaps(process.pid);
  assert.ok(smaps.some((s) => s.path === '[stack]' && s.vmFlags.includes('gd')));
  for (const s of smaps) {
    assert.equal(s.sizes['Size'], Number(s.end - s.start));
    assert.ok(s.vmFlags.length > 0);
  }
});
