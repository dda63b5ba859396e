/**
 * Single-process dump/restore end to end on the C counter: it keeps counting from
 * where it was, under the same PID, with its memory intact (mem=PASS) and its files
 * (the log on stdout, the count file it appends to) carried over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const tempDir = (prefix: string) => cleanups.tempDir(prefix);

/** Counter values of the TICK lines in `text`, in order; asserts every one says mem=PASS. */
function ticks(text: string): number[] {
  assert.doesNotMatch(text, /FAIL/, 'no FAIL line');
  return [...text.matchAll(/^TICK pid=\d+ counter=(\d+) mem=PASS$/gm)].map((m) => Number(m[1]));
}

function counts(file: string): number[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
}

function increasing(xs: number[], what: string): void {
  for (let i = 1; i < xs.length; i++) assert.ok(xs[i]! > xs[i - 1]!, `${what} increasing at ${i}: ${xs[i - 1]} then ${xs[i]}`);
}

async function startCounter(): Promise<{ v: Victim; countFile: string }> {
  const dir = tempDir('ckpt-dr-count-');
  const countFile = join(dir, 'count');
  const v = startVictim('counter', { args: [countFile] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  await v.waitFor(/(TICK.*\n[^]*){3}/); // a few ticks before the dump
  return { v, countFile };
}

/** Restores DIR and returns a handle on the restored process (killed by the after hook). */
function restored(dir: string, v: Victim): Victim {
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  return rv;
}

/** Waits until `n` more TICK lines than `base` are in the log. */
async function moreTicks(v: Victim, base: number, n: number): Promise<void> {
  const deadline = Date.now() + 15000;
  while (ticks(v.output()).length < base + n) {
    if (Date.now() > deadline) throw new Error(`no ${n} new ticks after restore; output:\n${v.output().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The memory map as the program sees it: ranges, permissions, offsets and names. */
function layout(pid: number): string[] {
  return readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n').map((l) => {
    const [range, perms, offset, , , ...path] = l.split(/\s+/);
    return [range, perms, offset, path.join(' ')].join(' ');
  });
}

test('the counter continues from its count under the same PID after dump and restore', async () => {
  const { v, countFile } = await startCounter();
  const dir = tempDir('ckpt-dr-img-');
  const mapsBefore = layout(v.pid);
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const before = ticks(v.output());
  const countsBefore = counts(countFile);
  assert.ok(before.length >= 3);

  const rv = restored(dir, v);
  assert.equal(rv.pid, v.pid, 'same PID');
  // Nothing of ckpt's own (scratch areas, the page file) is left in the memory map.
  assert.deepEqual(layout(rv.pid), mapsBefore, 'the same memory map as before the dump');
  await moreTicks(rv, before.length, 3);
  assert.ok(rv.alive());
  const all = ticks(rv.output());
  assert.ok(all[before.length]! >= before.at(-1)!, `first tick after restore ${all[before.length]} >= last before ${before.at(-1)}`);
  increasing(all, 'TICK counters');
  const countsAfter = counts(countFile);
  assert.ok(countsAfter.length > countsBefore.length, 'count file grows after restore');
  assert.deepEqual(countsAfter.slice(0, countsBefore.length), countsBefore, 'count file keeps what it had');
  increasing(countsAfter, 'count file');
  assert.match(rv.output(), new RegExp(`TICK pid=${v.pid} `));
});

test('leaveRunning leaves the original unharmed; the images restore after it is killed', async () => {
  const { v, countFile } = await startCounter();
  const dir = tempDir('ckpt-dr-img-');
  dump(v.pid, { imagesDir: dir, leaveRunning: true });
  const n = ticks(v.output()).length;
  await moreTicks(v, n, 3);
  assert.ok(v.alive(), 'original still running');
  increasing(ticks(v.output()), 'TICK counters of the original');

  await v.kill();
  const before = ticks(v.output());
  const rv = restored(dir, v);
  assert.equal(rv.pid, v.pid);
  await moreTicks(rv, before.length, 3);
  // The restored process continues from the dump point: its counter is at least
  // what it was at the dump, which is below what the original reached since.
  const after = ticks(rv.output()).slice(before.length);
  assert.ok(after.length >= 3);
  increasing(after, 'TICK counters after restore');
  assert.ok(after[0]! >= before[n - 1]!, `restored counter ${after[0]} >= counter at dump ${before[n - 1]}`);
  assert.ok(counts(countFile).length > 0);
});

test('the same images restore twice in sequence', async () => {
  const { v } = await startCounter();
  const dir = tempDir('ckpt-dr-img-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const atDump = ticks(v.output());
  const logSize = statSync(v.log).size;

  for (let round = 0; round < 2; round++) {
    // The restored stdout writes at its dump-time offset: cut what the last round wrote
    // so this round's lines do not land on top of it.
    truncateSync(v.log, logSize);
    const base = ticks(v.output()).length;
    const rv = restored(dir, v);
    assert.equal(rv.pid, v.pid, `same PID in round ${round}`);
    await moreTicks(rv, base, 2);
    const after = ticks(rv.output()).slice(base);
    increasing(after, `TICK counters in round ${round}`);
    assert.ok(after[0]! >= atDump.at(-1)!, `round ${round}: ${after[0]} >= ${atDump.at(-1)}`);
    await rv.kill();
    assert.ok(!existsSync(`/proc/${v.pid}`));
  }
});
