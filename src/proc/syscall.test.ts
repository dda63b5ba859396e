import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSyscallFile } from './syscall.js';

test('/proc/PID/task/TID/syscall: a blocked call with its arguments; running or outside a call is nothing', () => {
  assert.deepEqual(parseSyscallFile('28 0x7f3a00000000 0x100000 0x4 0x0 0x0 0x0 0x7ffd1234 0x7f3a11112222\n'), {
    nr: 28, args: [0x7f3a00000000n, 0x100000n, 4n, 0n, 0n, 0n],
  });
  assert.equal(parseSyscallFile('running\n'), undefined);
  assert.equal(parseSyscallFile('-1 0x7ffd1234 0x55550000\n'), undefined);
  assert.equal(parseSyscallFile('11 0x1 zz 0x0 0x0 0x0 0x0 0x0 0x0'), undefined);
});
