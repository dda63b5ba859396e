import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { startVictim, waitGone } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('a Node.js program (event loop, worker threads, epoll, eventfds, pipes) counts on after dump and restore', async () => {
  const script = new URL('../victims/node-counter.mjs', import.meta.url).pathname;
  const v = startVictim(process.execPath, { args: [script, 'count.txt'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/COUNT 5 PASS/, 30_000);
  assert.ok(readdirSync(`/proc/${v.pid}/task`).length > 1, 'node runs several threads');
  const dir = join(tmpdir(), `ckpt-node-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  const d = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(d.warnings, []);
  await waitGone(v.pid);
  const counts = () => readFileSync(join(v.dir, 'count.txt'), 'utf8').trim().split('\n').map(Number);
  const before = counts().at(-1)!;
  restore({ imagesDir: dir });
  rmSync(dir, { recursive: true, force: true });
  await v.waitFor(new RegExp(`COUNT ${before + 10} PASS`), 30_000);
  const all = counts();
  all.forEach((c, i) => assert.equal(c, i + 1, `count ${i + 1} is in the file once, in order`));
});
