// A page server's receiving end on fd 3 (a socket pair's end the test passed): receives
// sets into argv[2] with the hex token argv[3], and prints what happened as one JSON line.
import { Channel, receiveSets } from '../../src/images/index.js';

const [dir, tokenHex] = process.argv.slice(2);
try {
  const ch = Channel.server(3, { peer: 'test client', token: Buffer.from(tokenHex!, 'hex') });
  if (!ch) console.log(JSON.stringify({ refused: true }));
  else console.log(JSON.stringify({ sets: receiveSets(ch, { root: dir!, intoRoot: true }) }));
} catch (e) {
  console.log(JSON.stringify({ error: (e as Error).message }));
}
