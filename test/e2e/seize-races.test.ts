/**
 * Seizing processes that race with us: a child exiting while it is seized is a zombie
 * of its stopped parent (never a PERMISSION error); a process traced by someone else
 * is refused naming the tracer; ckpt refuses a tree it runs in.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isCkptError } from '../../src/common/errors.js';
import { dump } from '../../src/dump/dump.js';
import { killAll, startVictim, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

function track(v: Victim): Victim {
  cleanups.push(() => v.cleanup());
  return v;
}

function dumpError(pid: number, dir: string): unknown {
  try {
    dump(pid, { imagesDir: dir, leaveRunning: true });
  } catch (e) {
    return e;
  }
  return undefined;
}

const ROUNDS = Number(process.env.CKPT_SEIZE_ROUNDS ?? 40);

test(`a process forking and reaping children without pause is dumped ${ROUNDS} times in a row`, { timeout: 120_000 }, async () => {
  cleanups.push(() => killAll('forker'));
  const v = track(startVictim('forker'));
  await v.waitFor(/TICK PASS/);
  for (let i = 0; i < ROUNDS; i++) {
    const dir = join(cleanups.tempDir('ckpt-seize-'), 'img');
    const err = dumpError(v.pid, dir);
    assert.equal(err, undefined, `dump ${i}: ${String(err)}`);
  }
  const mark = v.output().length;
  await v.waitFor(/TICK \w+ reaped/, 10_000);
  assert.doesNotMatch(v.output().slice(mark), /FAIL/);
  assert.doesNotMatch(v.output(), /TICK FAIL/);
});

test('a process traced by another tracer is refused with PERMISSION naming the tracer', { timeout: 60_000 }, async () => {
  const v = track(startVictim('counter'));
  await v.waitFor(/TICK/);
  const strace = spawn('strace', ['-o', '/dev/null', '-p', String(v.pid)], { stdio: 'ignore' });
  cleanups.push(() => void strace.kill('SIGKILL'));
  const tracer = () => Number(/TracerPid:\s+(\d+)/.exec(readFileSync(`/proc/${v.pid}/status`, 'utf8'))![1]);
  for (let i = 0; i < 500 && tracer() === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(tracer(), strace.pid);
  const err = dumpError(v.pid, join(cleanups.tempDir('ckpt-seize-'), 'img'));
  assert.ok(isCkptError(err, 'PERMISSION'), String(err));
  assert.match(err.message, new RegExp(`traced by process ${strace.pid} \\(strace\\)`));
});

test('ckpt refuses to dump itself or a tree it runs in, naming it', () => {
  const dir = () => join(cleanups.tempDir('ckpt-seize-'), 'img');
  const self = dumpError(process.pid, dir());
  assert.ok(isCkptError(self, 'USAGE'), String(self));
  assert.match(self.message, new RegExp(`Cannot dump process ${process.pid}: it is ckpt itself`));
  const parent = dumpError(process.ppid, dir());
  assert.ok(isCkptError(parent, 'USAGE'), String(parent));
  assert.match(parent.message, new RegExp(`ckpt \\(process ${process.pid}\\) runs inside its tree, under process ${process.ppid} \\(`));
});
