import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNumaMapsPolicied } from './numa-maps.js';

const text = `556e2c107000 default file=/usr/bin/x mapped=2 N0=2 kernelpagesize_kB=4
7f4a26e41000 bind:0 anon=1 dirty=1 active=0 N0=1 kernelpagesize_kB=4
7f4a26e45000 local anon=2 dirty=2 N0=2 kernelpagesize_kB=4
7f4a26e47000 weighted interleave:0-1
7ffe4b43b000 default stack anon=4 dirty=4 N0=4 kernelpagesize_kB=4
`;

test('numa_maps: the areas not shown as default, or every area', () => {
  assert.deepEqual(parseNumaMapsPolicied('numa_maps', text), [0x7f4a26e41000n, 0x7f4a26e45000n, 0x7f4a26e47000n]);
  assert.equal(parseNumaMapsPolicied('numa_maps', text, { all: true }).length, 5);
  assert.throws(() => parseNumaMapsPolicied('numa_maps', 'junk\n'), { code: 'INTERNAL', message: /^Cannot parse numa_maps/ });
});
