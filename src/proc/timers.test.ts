import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTimers } from './timers.js';

test('parseTimers reads every field of /proc/PID/timers', () => {
  const text = 'ID: 0\nsignal: 34/000000000000006f\nnotify: signal/pid.812\nClockID: 1\n' +
    'ID: 3\nsignal: 14/ffff8000deadbeef\nnotify: none/pid.812\nClockID: 0\n' +
    'ID: 4\nsignal: 35/0000000000000000\nnotify: signal/tid.815\nClockID: -6\n';
  assert.deepEqual(parseTimers(text), [
    { id: 0, signo: 34, value: 0x6fn, notify: 'signal', toThread: false, target: 812, clock: 1 },
    { id: 3, signo: 14, value: 0xffff8000deadbeefn, notify: 'none', toThread: false, target: 812, clock: 0 },
    { id: 4, signo: 35, value: 0n, notify: 'signal', toThread: true, target: 815, clock: -6 },
  ]);
  assert.deepEqual(parseTimers(''), []);
});

test('parseTimers refuses what it does not understand', () => {
  assert.throws(() => parseTimers('ID: 0\nsignal: 34/6f\n'), { code: 'INTERNAL' });
  assert.throws(() => parseTimers('ID: 0\nsignal: 34/6f\nnotify: weird/pid.1\nClockID: 1\n'), /cannot parse timer/);
});
