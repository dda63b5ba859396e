import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { bigintReplacer, stringifyWithBigints } from '../../images/bigint.js';
import { MemoryState, Vma, VMA_KINDS } from './state.js';
import { builtAreas, vmaList } from './vmas.js';

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

test('areas are written in the compact form (format 1.6) and read back the same, as the list of objects still is', () => {
  const shared = Object.freeze(['rd', 'wr']) as string[];
  const list = [
    BASE,
    { start: 0x1000n, end: 0x2000n, prot: 5, shared: true, kind: 'anon', offset: 0n, flags: shared },
    { start: 0x2000n, end: 0x3000n, prot: 0, shared: false, kind: 'anon', offset: 0n, flags: shared },
    { start: 0xffffffffff600000n, end: 0xffffffffff601000n, prot: 4, shared: false, kind: 'vsyscall', offset: 2n ** 64n - 1n, flags: ['ex'] },
  ];
  const parsed = fast.parse(list);
  const text = stringifyWithBigints(parsed);
  const compact = JSON.parse(text) as { flags: string[][]; rows: unknown[][] };
  assert.deepEqual(compact.flags, [BASE.flags, ['rd', 'wr'], ['ex']]);
  assert.deepEqual(compact.rows[1], [0x1000, 0x2000, 5, 1, 'anon', 0, 1]);
  assert.deepEqual(compact.rows[3], ['18446744073699065856', '18446744073699069952', 4, 0, 'vsyscall', '18446744073709551615', 2]);
  assert.deepEqual(compact.rows[0]![7], { file: 2, shm: 1, inherited: true, name: 'arena' });
  assert.deepEqual(fast.parse(compact), reference.parse(list));
  // Idempotent, as every image schema must be: parse(serialize(parse(x))) = parse(x).
  assert.equal(stringifyWithBigints(fast.parse(compact)), text);
  assert.deepEqual(fast.parse(JSON.parse(JSON.stringify(list, bigintReplacer))), reference.parse(list));
});

test('a bad compact row is refused and named', () => {
  const good = { flags: [['rd']], rows: [[4096, 8192, 3, 0, 'anon', 0, 0]] };
  assert.equal(fast.safeParse(good).success, true);
  const bad: [unknown, (string | number)[]][] = [
    [{ ...good, rows: [[4096, 8192, 3, 0, 'anon', 0, 1]] }, ['rows', 0, 6]],
    [{ ...good, rows: [[4096, 8192, 3, 2, 'anon', 0, 0]] }, ['rows', 0, 3]],
    [{ ...good, rows: [[-1, 8192, 3, 0, 'anon', 0, 0]] }, ['rows', 0, 0]],
    [{ ...good, rows: [[2 ** 53, 8192, 3, 0, 'anon', 0, 0]] }, ['rows', 0, 0]],
    [{ ...good, rows: [[4096, '18446744073709551616', 3, 0, 'anon', 0, 0]] }, ['rows', 0, 1]],
    [{ ...good, rows: [[4096, 8192, 8, 0, 'anon', 0, 0]] }, ['rows', 0, 2]],
    [{ ...good, rows: [[4096, 8192, 3, 0, 'bogus', 0, 0]] }, ['rows', 0, 4]],
    [{ ...good, rows: [[4096, 8192, 3, 0, 'anon', 0.5, 0]] }, ['rows', 0, 5]],
    [{ ...good, rows: [[4096, 8192, 3, 0, 'anon', 0, 0, { name: 'x'.repeat(4097) }]] }, ['rows', 0]],
    [{ ...good, rows: [[4096, 8192, 3, 0, 'anon', 0, 0, []]] }, ['rows', 0]],
    [{ ...good, rows: [[4096, 8192, 3, 0, 'anon', 0]] }, ['rows', 0]],
    [{ ...good, rows: [null] }, ['rows', 0]],
    [{ ...good, rows: new Array(6).fill(good.rows[0]) }, ['rows']],
    [{ flags: [['abcde']], rows: good.rows }, ['flags', 0]],
    [{ flags: 'rd', rows: good.rows }, ['flags']],
    [{ flags: good.flags }, ['rows']],
    ['rows', []],
  ];
  for (const [value, path] of bad) {
    const r = fast.safeParse(value);
    assert.equal(r.success, false, JSON.stringify(value));
    assert.deepEqual(r.error?.issues[0]?.path, path, JSON.stringify(value));
  }
});

test('areas the dump built are checked where they are: same verdicts (bigint fields), the same objects kept', () => {
  const bigints = (v: Record<string, unknown>) => Object.values(v).every((x) => typeof x !== 'string' || !/^-?[0-9]/.test(x));
  for (const key of Object.keys(BASE)) {
    for (const value of VALUES) {
      const vma: Record<string, unknown> = { ...BASE, [key]: value };
      if (value === undefined) delete vma[key];
      // Built areas hold bigints, never the decimal strings of an image.
      if (!bigints(vma)) continue;
      const why = `${key} = ${String(JSON.stringify(value, bigintReplacer)).slice(0, 40)}`;
      const a = reference.safeParse([vma]);
      const b = fast.safeParse(builtAreas([vma]));
      assert.equal(b.success, a.success, `${why}: ${a.success ? 'zod accepts' : 'zod refuses'}`);
      if (a.success && b.success) {
        assert.deepEqual(b.data, a.data, why);
        assert.equal(b.data[0], vma, `${why}: kept, not copied`);
      }
    }
  }
  const bad = fast.safeParse(builtAreas([BASE, { ...BASE, prot: 9 }]));
  assert.deepEqual(bad.error?.issues[0]?.path, [1, 'prot']);
});
