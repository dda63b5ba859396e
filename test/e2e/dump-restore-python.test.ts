/**
 * A real program: python3 holding state in a dict and a growing list, checking its own
 * invariants every 100 ms (test/victims/dr-dict.py), keeps working after dump and restore.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const PYTHON = (process.env.PATH ?? '/usr/bin').split(':').map((d) => join(d, 'python3')).find((p) => p.startsWith('/') && existsSync(p));
const SCRIPT = new URL('../victims/dr-dict.py', import.meta.url).pathname;
const cleanups = useCleanups();

function lines(text: string): number[] {
  assert.doesNotMatch(text, /FAIL/, 'no FAIL line');
  return [...text.matchAll(/^n=(\d+) sum=\d+ ok$/gm)].map((m) => Number(m[1]));
}

test('python3 with a dict and a growing list keeps its invariants across dump and restore', { timeout: 60_000, skip: PYTHON ? false : 'no python3' }, async () => {
  const v = startVictim(PYTHON!, { args: [SCRIPT] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  await v.waitFor(/(^n=\d+ sum=\d+ ok\n[^]*){3}/m);
  assert.deepEqual(readdirSync(`/proc/${v.pid}/task`), [String(v.pid)], 'python3 runs single-threaded');

  const dir = cleanups.tempDir('ckpt-dr-py-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const before = lines(v.output());

  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(r.pid, v.pid, 'same PID');
  const deadline = Date.now() + 20_000;
  while (lines(rv.output()).length < before.length + 5) {
    if (Date.now() > deadline) assert.fail(`no new lines after restore:\n${rv.output().slice(-2000)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
  const all = lines(rv.output());
  for (let i = 1; i < all.length; i++) assert.equal(all[i], all[i - 1]! + 50, `n grows by 50 per line (line ${i})`);
  assert.ok(rv.alive());
});

function rounds(text: string): number[] {
  assert.doesNotMatch(text, /FAIL/, 'no FAIL line');
  return [...text.matchAll(/^round=(\d+) ok$/gm)].map((m) => Number(m[1]));
}

test('python3 with a 96 MiB heap: its digests still match after restore', { timeout: 120_000, skip: PYTHON ? false : 'no python3' }, async () => {
  const v = startVictim(PYTHON!, { args: [new URL('../victims/py-big.py', import.meta.url).pathname, '96'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/, 60_000);
  await v.waitFor(/(^round=\d+ ok\n[^]*){2}/m, 30_000);

  const dir = cleanups.tempDir('ckpt-dr-pybig-');
  const d = dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  assert.ok(d.bytes > 96 * 1024 * 1024, `dumped ${d.bytes} bytes`);
  const before = rounds(v.output());

  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(r.pid, v.pid, 'same PID');
  const deadline = Date.now() + 30_000;
  while (rounds(rv.output()).length < before.length + 3) {
    if (Date.now() > deadline) assert.fail(`no new rounds after restore:\n${rv.output().slice(-2000)}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  const all = rounds(rv.output());
  for (let i = 1; i < all.length; i++) assert.equal(all[i], all[i - 1]! + 1, `rounds follow each other (line ${i})`);
  assert.ok(rv.alive());
});
