import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BTF_KIND, parseBtf } from './btf.js';

/** A BTF blob: int; union { int b; }; struct outer { int a; union { int b; }; }; func f. */
function blob(): Buffer {
  const strs = Buffer.from('\0int\0b\0outer\0a\0f\0flags\0ONE\0BIG\0', 'latin1');
  const off = (s: string) => strs.indexOf(Buffer.from(`\0${s}\0`, 'latin1')) + 1;
  const words: number[] = [
    off('int'), 1 << 24, 4, 32, // 1: INT int (4 bytes, 32 bits)
    0, (5 << 24) | 1, 4, off('b'), 1, 0, // 2: UNION (anonymous) { int b @0 }
    off('outer'), (4 << 24) | 2, 12, off('a'), 1, 0, 0, 2, 64, // 3: STRUCT outer { int a @0; union @64 bits }
    off('f'), 12 << 24, 0, // 4: FUNC f
    off('flags'), (6 << 24) | 2, 4, off('ONE'), 1, off('BIG'), 1 << 10, // 5: ENUM flags { ONE = 1, BIG = 1 << 10 } (unsigned)
  ];
  const types = Buffer.alloc(4 * words.length);
  words.forEach((w, i) => types.writeUInt32LE(w, 4 * i));
  const hdr = Buffer.alloc(24);
  hdr.writeUInt16LE(0xeb9f, 0);
  hdr.writeUInt8(1, 2);
  hdr.writeUInt32LE(24, 4);
  hdr.writeUInt32LE(0, 8);
  hdr.writeUInt32LE(types.length, 12);
  hdr.writeUInt32LE(types.length, 16);
  hdr.writeUInt32LE(strs.length, 20);
  return Buffer.concat([hdr, types, strs]);
}

test('BTF: types by kind and name, member offsets through anonymous unions', () => {
  const btf = parseBtf(blob());
  assert.equal(btf.find(BTF_KIND.STRUCT, 'outer'), 3);
  assert.equal(btf.find(BTF_KIND.FUNC, 'f'), 4);
  assert.equal(btf.find(BTF_KIND.STRUCT, 'f'), undefined);
  assert.equal(btf.find(BTF_KIND.STRUCT, 'missing'), undefined);
  assert.equal(btf.offsetOf(3, 'a'), 0);
  assert.equal(btf.offsetOf(3, 'b'), 8);
  assert.equal(btf.offsetOf(3, 'nope'), undefined);
  assert.equal(btf.enumValue('BIG'), 1 << 10);
  assert.equal(btf.enumValue('ONE'), 1);
  assert.equal(btf.enumValue('outer'), undefined);
});

test('BTF: a blob that is not BTF or is cut short is refused', () => {
  assert.throws(() => parseBtf(Buffer.alloc(24)), /not a BTF blob/);
  assert.throws(() => parseBtf(blob().subarray(0, 40)), /truncated/);
});
