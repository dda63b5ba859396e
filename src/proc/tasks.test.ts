import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { listTasks, readChildren } from './tasks.js';

test('listTasks(self) lists the main thread first and sees a new worker thread', async () => {
  const before = listTasks(process.pid);
  assert.equal(before[0], process.pid);
  assert.deepEqual(before, [...before].sort((a, b) => a - b));
  const w = new Worker('setInterval(() => {}, 1000)', { eval: true });
  await once(w, 'online');
  try {
    assert.ok(listTasks(process.pid).length > before.length);
  } finally {
    await w.terminate();
  }
});

test('readChildren(self) includes a spawned child', async () => {
  const child = spawn('sleep', ['5'], { stdio: 'ignore' });
  await once(child, 'spawn');
  try {
    assert.ok(child.pid !== undefined && readChildren(process.pid).includes(child.pid));
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
});

test('listTasks on a PID that cannot exist throws NO_PROCESS', () => {
  assert.throws(() => listTasks(999999999), { name: 'CkptError', code: 'NO_PROCESS' });
  assert.throws(() => readChildren(999999999), { name: 'CkptError', code: 'NO_PROCESS' });
});
