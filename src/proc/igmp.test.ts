import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIgmp, parseIgmp6 } from './igmp.js';

test('/proc/net/igmp gives each group with its interface, the address in network order', () => {
  const text = `Idx	Device    : Count Querier	Group    Users Timer	Reporter
1	lo        :     2      V3
				0A0A0AEF     1 0:00000000		0
				010000E0     1 0:00000000		0
4	eth0      :     1      V3
				010000E0     1 0:00000000		0
`;
  assert.deepEqual(parseIgmp(text), [
    { ifindex: 1, group: 'ef0a0a0a', users: 1 },
    { ifindex: 1, group: 'e0000001', users: 1 },
    { ifindex: 4, group: 'e0000001', users: 1 },
  ]);
});

test('/proc/net/igmp6 gives each group with its interface', () => {
  const text = `1    lo              ff020000000000000000000000000001     1 0000000C 0
3    eth0            ff151234000000000000000000000042     2 00000004 0
`;
  assert.deepEqual(parseIgmp6(text), [
    { ifindex: 1, group: 'ff020000000000000000000000000001', users: 1 },
    { ifindex: 3, group: 'ff151234000000000000000000000042', users: 2 },
  ]);
});
