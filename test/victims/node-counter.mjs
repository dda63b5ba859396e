// A Node.js program no one here wrote the runtime of: an event loop (epoll, eventfds,
// pipes, worker threads) counting on a timer into a file. Each line says PASS while the
// count never skipped or went back.
import { appendFileSync } from 'node:fs';

const file = process.argv[2];
let n = 0;
let last = Date.now();
console.log(`READY pid=${process.pid}`);
setInterval(() => {
  n += 1;
  appendFileSync(file, `${n}\n`);
  const now = Date.now();
  console.log(`COUNT ${n} PASS gap=${now - last}`);
  last = now;
}, 100);
