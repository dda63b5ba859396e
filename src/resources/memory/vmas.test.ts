import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { bigintReplacer } from '../../images/bigint.js';
import { MemoryState, Vma, VMA_KINDS } from './state.js';
import { vmaList } from './vmas.js';

const reference = z.array(Vma).max(5);
const fast = vmaList(VMA_KINDS, 5);

const BASE = {
  start: 0x7f0000000000n, end: 0x7f0000001000n, prot: 3, shared: false, kind: 'file', file: 2, offset: 0x1000n, shm: 1,
  flags: ['rd', 'wr', 'mr', 'mw', 'me', 'ac'], inherited: true, name: 'arena',
};
const VALUES: unknown[] = [
  undefined, null, true, false, 0, -1, 7, 8, 1.5, 2 ** 53 - 1, 2 ** 53, NaN, Infinity, -0, '0', '-1', '007', '18446744073709551615',
  '18446744073709551616', '123456789012345678901', '-9223372036854775808', ' 1', '1e3', '0x10', '', 'anon', 'sysv', 'bogus', 'x'.repeat(4096),
  'x'.repeat(4097), [], ['rd'], ['abcd'], ['abcde'], ['a b'], new Array(64).fill('rd'), new Array(65).fill('rd'), [1], [null], {}, 0n, -1n,
  2n ** 64n - 1n, 2n ** 64n, 0x1000n,
];

function same(list: unknown[], why: string): void {
  const a = reference.safeParse(list);
  const b = fast.safeParse(list);
  assert.equal(b.success, a.success, `${why}: ${a.success ? 'zod accepts' : 'zod refuses'}`);
  if (a.success && b.success) assert.deepEqual(b.data, a.data, why);
}

test('areas: the one-loop check accepts and yields exactly what z.array(Vma) does', () => {
  const json = (v: unknown) => JSON.parse(JSON.stringify(v, bigintReplacer)) as unknown;
  same([BASE], 'base');
  same([json(BASE)], 'base through JSON');
  same([], 'no areas');
  same(new Array(6).fill(BASE), 'too many');
  for (const el of [null, 5, 'x', [], [BASE]]) same([el], `element ${JSON.stringify(el, bigintReplacer)}`);
  same([{ ...BASE, extra: 1 }], 'an unknown key is dropped');
  for (const key of Object.keys(BASE)) {
    for (const value of VALUES) {
      const vma: Record<string, unknown> = { ...BASE, [key]: value };
      if (value === undefined) delete vma[key];
      const why = `${key} = ${String(JSON.stringify(value, bigintReplacer)).slice(0, 40)}`;
      same([vma], why);
      same([BASE, json(vma)], `${why}, through JSON`);
    }
  }
});

test('a bad area is named in the error', () => {
  const state = {
    vmas: [BASE], files: [], auxv: '', exe: 0,
    mm: Object.fromEntries(['startCode', 'endCode', 'startData', 'endData', 'startBrk', 'brk', 'startStack', 'argStart', 'argEnd', 'envStart', 'envEnd'].map((k) => [k, 0n])),
  };
  assert.equal(MemoryState.safeParse(state).success, true);
  const flags = ['rd'];
  const bad = MemoryState.safeParse({ ...state, vmas: [{ ...BASE, flags }, { ...BASE, flags }, { ...BASE, end: '-1' }] });
  assert.equal(bad.success, false);
  assert.deepEqual(bad.error?.issues[0]?.path, ['vmas', 2, 'end']);
  flags.push('abcde');
  assert.equal(MemoryState.safeParse({ ...state, vmas: [{ ...BASE, flags: ['abcde'] }] }).success, false);
});
