import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAutogroupNice } from './misc.js';

test('autogroup: a nice value is read; no autogroup of its own (empty file) is not an error', () => {
  assert.equal(parseAutogroupNice('f', '/autogroup-715 nice 0\n'), 0);
  assert.equal(parseAutogroupNice('f', '/autogroup-3 nice -20\n'), -20);
  assert.equal(parseAutogroupNice('f', ''), undefined);
  assert.equal(parseAutogroupNice('f', '\n'), undefined);
  assert.throws(() => parseAutogroupNice('f', 'nice\n'), { code: 'INTERNAL', message: /Cannot parse f: expected/ });
});
