import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetSockets } from './netsock.js';

test('the /proc/net socket tables give addresses in network order, state, queues and inode', () => {
  const v4 = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  255: 0100007F:00FD 0100007F:0000 01 00000000:00000340 00:00000000 00000000     0        0 1016872 2 0000000000000000 0
`;
  assert.deepEqual(parseNetSockets(v4), [{
    local: { addr: '7f000001', port: 253 }, remote: { addr: '7f000001', port: 0 }, state: 1, txQueue: 0, rxQueue: 0x340, ino: 1016872,
  }]);
  const v6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1234: 00000000000000000000000001000000:B243 00000000000000000000000001000000:0000 01 00000000:00000000 00:00000000 00000000     0        0 99 2 0000000000000000 0
`;
  const [s] = parseNetSockets(v6);
  assert.equal(s!.local.addr, '00000000000000000000000000000001');
  assert.equal(s!.local.port, 0xb243);
  assert.equal(s!.ino, 99);
});
