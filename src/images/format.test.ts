import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { isCkptError } from '../common/errors.js';
import { crc32, crc32Fallback } from './crc32.js';
import { bigintReplacer, zBig } from './bigint.js';
import { encodeMetaImage, FORMAT_VERSION, MAX_META_PAYLOAD, parseMetaHeader } from './format.js';

test('crc32 matches the known vector and the JS fallback matches node:zlib', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.equal(crc32Fallback(Buffer.from('123456789')), 0xcbf43926);
  const data = randomBytes(10_000);
  const whole = crc32(data);
  assert.equal(crc32Fallback(data), whole);
  assert.equal(crc32(data.subarray(5000), crc32(data.subarray(0, 5000))), whole, 'incremental');
  assert.equal(crc32Fallback(data.subarray(5000), crc32Fallback(data.subarray(0, 5000))), whole);
});

test('zBig reads decimal strings and bigints, bounded to 64 bits', () => {
  const S = z.object({ a: zBig });
  assert.deepEqual(S.parse({ a: '18446744073709551615' }), { a: 0xffffffffffffffffn });
  assert.deepEqual(S.parse({ a: -5n }), { a: -5n });
  assert.equal(JSON.stringify({ a: 1n << 60n }, bigintReplacer), '{"a":"1152921504606846976"}');
  for (const bad of ['18446744073709551616', '0x10', '1e3', '', 12, '-9223372036854775809']) {
    assert.equal(S.safeParse({ a: bad }).success, false, String(bad));
  }
});

test('a metadata header round-trips and a newer major is refused with a clear message', () => {
  const img = encodeMetaImage('core', Buffer.from('{}'));
  const h = parseMetaHeader('x', img, img.length);
  assert.deepEqual([h.kind, h.payloadLength, h.version], ['core', 2, FORMAT_VERSION]);
  const newer = Buffer.from(img);
  newer.writeUInt32LE(2, 8);
  newer.writeUInt32LE(0, 12);
  assert.throws(() => parseMetaHeader('D/core-1.img', newer, newer.length), {
    message: 'Cannot read D/core-1.img: image format 2.0 is newer than this ckpt understands (1.x)',
  });
  // A newer minor may hold fields this version would strip: refused too, never half-restored.
  const minor = Buffer.from(img);
  minor.writeUInt32LE(FORMAT_VERSION.minor + 1, 12);
  assert.throws(() => parseMetaHeader('x', minor, minor.length), /image format 1\.\d+ is newer than this ckpt understands/);
  const older = Buffer.from(img);
  older.writeUInt32LE(0, 12);
  assert.equal(parseMetaHeader('x', older, older.length).version.minor, 0, 'an older minor of our major is read');
});

test('bad magic, truncation, trailing bytes and oversize payloads are BAD_IMAGE', () => {
  const img = encodeMetaImage('core', Buffer.from('{"a":1}'));
  const check = (buf: Buffer, size: number, msg: RegExp) =>
    assert.throws(() => parseMetaHeader('f', buf, size), (e) => isCkptError(e, 'BAD_IMAGE') && msg.test(e.message));
  check(Buffer.from('NOTANIMG........'), 16, /bad magic/);
  check(img.subarray(0, 12), 12, /truncated/);
  check(img, img.length - 1, /truncated \(payload/);
  check(img, img.length + 3, /3 trailing bytes/);
  const huge = Buffer.from(img);
  huge.writeBigUInt64LE(BigInt(MAX_META_PAYLOAD + 1), 24);
  check(huge, huge.length, /exceeds/);
});
