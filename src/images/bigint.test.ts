import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bigintReplacer, stringifyWithBigints } from './bigint.js';

test('stringifyWithBigints writes what the replacer writes and leaves BigInt.prototype as it was', () => {
  const value = { a: 1n, b: [2n ** 64n - 1n, -(2n ** 63n), 'x', null, { c: 0n }], d: undefined, e: 1.5 };
  assert.equal(stringifyWithBigints(value), JSON.stringify(value, bigintReplacer));
  assert.equal(Object.getOwnPropertyDescriptor(BigInt.prototype, 'toJSON'), undefined);
  // A program's own toJSON is put back after the call.
  const own = function (this: bigint) { return Number(this); };
  Object.defineProperty(BigInt.prototype, 'toJSON', { value: own, configurable: true, writable: true });
  try {
    assert.equal(stringifyWithBigints({ a: 5n }), '{"a":"5"}');
    assert.equal(Object.getOwnPropertyDescriptor(BigInt.prototype, 'toJSON')?.value, own);
  } finally {
    delete (BigInt.prototype as { toJSON?: unknown }).toJSON;
  }
});
