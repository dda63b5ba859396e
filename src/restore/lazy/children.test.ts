import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { childrenOf, nameChildren, withDescendants } from './children.js';

test('forked children are named oldest first among the children no one has, and given up on after a while', async (t) => {
  const kids = [spawn('sleep', ['30']), spawn('sleep', ['30'])];
  t.after(() => kids.forEach((k) => k.kill('SIGKILL')));
  const [a, b] = kids.map((k) => k.pid!) as [number, number];
  const mine = childrenOf(process.pid);
  assert.ok(mine.includes(a) && mine.includes(b), `children of ${process.pid}: ${mine.join(' ')}`);
  assert.ok(withDescendants([process.pid]).includes(b));
  const now = performance.now();
  const known = new Set(mine.filter((p) => p !== a && p !== b));
  // Two forks of this process, one of an unnamed parent (waits), one of a process with no children (waits, then gives up).
  const got = nameChildren([{ parent: process.pid, since: now }, { parent: -1, since: now }, { parent: process.pid, since: now }, { parent: b, since: now - 5000 }], known);
  assert.deepEqual(got, [[0, Math.min(a, b)], [2, Math.max(a, b)], [3, -1]]);
  // One already known: only the other is left to give.
  assert.deepEqual(nameChildren([{ parent: process.pid, since: now }], new Set([...known, a])), [[0, b]]);
});
