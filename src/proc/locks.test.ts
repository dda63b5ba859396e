import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLockLine } from './locks.js';

test('POSIX, OFD, flock and lease lines as fdinfo prints them', () => {
  assert.deepEqual(parseLockLine('lock:\t1: POSIX  ADVISORY  WRITE 8581 fe:00:2146351 10 14'), {
    class: 'POSIX', mode: 'ADVISORY', type: 'WRITE', pid: 8581, file: 'fe:00:2146351', start: 10n, end: 14n,
  });
  assert.deepEqual(parseLockLine('lock:\t2: OFDLCK ADVISORY  READ -1 fe:00:2146352 0 EOF'), {
    class: 'OFDLCK', mode: 'ADVISORY', type: 'READ', pid: -1, file: 'fe:00:2146352', start: 0n,
  });
  assert.equal(parseLockLine('lock:\t1: FLOCK  ADVISORY  WRITE 8581 fe:00:2146350 0 EOF').class, 'FLOCK');
  assert.equal(parseLockLine('lock:\t1: LEASE  BREAKING  UNLCK 8581 fe:00:2146356 0 EOF').mode, 'BREAKING');
});

test('a line of another shape is an error, not a lock silently skipped', () => {
  assert.throws(() => parseLockLine('lock:\t1: POSIX ADVISORY'), { code: 'INTERNAL', message: /cannot read the lock line/ });
});
