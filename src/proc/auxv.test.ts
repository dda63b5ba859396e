import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseAuxv, readAuxv } from './auxv.js';

const AT_PAGESZ = 6;
const AT_ENTRY = 9;
const AT_EXECFN = 31;

test('auxv of python: AT_PAGESZ 4096, stops at AT_NULL', () => {
  const buf = readFileSync(new URL('./fixtures/auxv-python.bin', import.meta.url));
  const aux = parseAuxv(buf);
  assert.ok(aux.length > 10 && aux.length < buf.length / 16);
  assert.equal(aux.find((a) => a.type === AT_PAGESZ)?.value, 4096n);
  assert.ok(aux.every((a) => a.type !== 0));
});

test('parseAuxv stops at AT_NULL and ignores trailing bytes', () => {
  const buf = Buffer.alloc(16 * 3 + 5);
  buf.writeBigUInt64LE(6n, 0);
  buf.writeBigUInt64LE(4096n, 8);
  buf.writeBigUInt64LE(0n, 16);
  buf.writeBigUInt64LE(99n, 32);
  assert.deepEqual(parseAuxv(buf), [{ type: 6, value: 4096n }]);
  assert.deepEqual(parseAuxv(Buffer.alloc(0)), []);
});

test('readAuxv(self): entry point and exec file name are set', () => {
  const aux = parseAuxv(readAuxv(process.pid));
  assert.ok((aux.find((a) => a.type === AT_ENTRY)?.value ?? 0n) > 0n);
  assert.ok((aux.find((a) => a.type === AT_EXECFN)?.value ?? 0n) > 0n);
});
