/**
 * Background snapshot (bg-snap.c): `dump -R --background` of a victim whose threads keep
 * rewriting 64 MiB. The image must be the memory of the freeze (the restored victim finds
 * every page at the generation its writer had recorded), and the original, which ran on
 * during the copy, must find its own memory right too. A process that discards memory ckpt
 * has not saved yet (MADV_DONTNEED) has it saved first; one that unmaps it makes the dump
 * fail and runs on; a ckpt killed during the copy leaves
 * no thread waiting on a page; a tree of processes sharing pages copy-on-write is saved
 * whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { killAll, startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { buildCli } from '../helpers/bundle.js';
import { restoreAndCheck } from '../helpers/self-check.js';

const cleanups = useCleanups();

async function start(args: string[] = []): Promise<Victim> {
  const v = startVictim('bg-snap', { args: ['64', ...args] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  return v;
}

/** Asks the victim to check itself (its n-th check) and returns what it said. */
async function selfCheck(v: Victim, n: number): Promise<string> {
  kill(v.pid, SIG.SIGUSR1);
  const out = await v.waitFor(new RegExp(`(?:DONE fails=\\d+\\n[^]*){${n}}`), 20_000);
  return out.input!;
}

async function dumpRestoreCheck(args: string[]): Promise<void> {
  const v = await start(args);
  const dir = cleanups.tempDir('ckpt-bg-');
  const r = dump(v.pid, { imagesDir: dir, leaveRunning: true, background: true });
  assert.ok(r.background, 'a background dump says so');
  assert.ok(r.background.faults > 0, `the writers waited for their pages (${r.background.faults} faults)`);
  // No smaps read while frozen (its page walk grows with memory): VmFlags come from before the freeze.
  if (args.length === 0) assert.equal(r.background.smapsAtFreeze, 0, 'smaps was read while frozen');
  // The original ran on during the copy: its memory must be right.
  const original = await selfCheck(v, 1);
  assert.match(original, /DONE fails=0/, original);
  await v.kill();
  await waitGone(v.pid);
  const rr = restore({ imagesDir: dir });
  const rv = wrapPid(rr.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  const out = await selfCheck(rv, 2);
  assert.doesNotMatch(out, /FAIL/, out);
  assert.match(out.slice(out.indexOf('DONE fails=0') + 1), /PASS every page holds the generation its writer recorded/, out);
}

test('dump -R --background: the image is the memory of the freeze, the original runs on intact', async () => {
  await dumpRestoreCheck([]);
});

test('an area moved by mremap during the background copy is saved as it was at the freeze', async () => {
  await dumpRestoreCheck(['remap']);
});

test('a process that keeps discarding memory (MADV_DONTNEED) during the copy: its pages are copied before they go, the image is the memory of the freeze', async () => {
  await dumpRestoreCheck(['discard']);
});

test('a process that keeps forking children that write their copies of its pages: the image is the memory of the freeze', async () => {
  // A child caught by the freeze is part of the tree; if it exits during the copy its
  // pages are gone and the dump says so. It lives ~0.1 ms of every ~1 ms: a few tries.
  for (let tries = 0; ; tries++) {
    try {
      await dumpRestoreCheck(['fork']);
      return;
    } catch (e) {
      // A child that exits mid-copy is named as gone, or its page as changed, whichever ckpt meets first.
      if (tries === 3 || !/exited before its pages were saved|changed before ckpt saved it/.test(String(e))) throw e;
    }
  }
});

test('--background without -R, or with checksums or tracking, is refused before anything is touched', async () => {
  const v = await start();
  const dir = cleanups.tempDir('ckpt-bg-');
  assert.throws(() => dump(v.pid, { imagesDir: dir, background: true }), { code: 'USAGE', message: /needs --leave-running/ });
  assert.throws(() => dump(v.pid, { imagesDir: dir, background: true, leaveRunning: true, pageChecksums: true }), { code: 'USAGE', message: /page-checksums/ });
  assert.throws(() => dump(v.pid, { imagesDir: dir, background: true, leaveRunning: true, trackMem: true }), { code: 'USAGE', message: /track-mem/ });
  assert.ok(v.alive());
});

test('a process that keeps unmapping memory during the copy: the dump fails naming the page, the process runs on intact', async () => {
  const v = await start(['unmap']);
  // ckpt may copy every page before the program unmaps one (a busy machine): a few tries.
  let refused: unknown;
  for (let tries = 0; tries < 5 && refused === undefined; tries++) {
    try {
      dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-bg-'), leaveRunning: true, background: true });
    } catch (e) {
      refused = e;
    }
  }
  assert.ok(refused !== undefined, 'no dump met an unmapped page in 5 tries');
  assert.equal((refused as { code?: string }).code, 'UNSUPPORTED', String(refused));
  assert.match(String(refused), /in the background: its page at 0x[0-9a-f]+ changed before ckpt saved it/);
  const out = await selfCheck(v, 1);
  assert.match(out, /DONE fails=0/, out);
  assert.doesNotMatch(readFileSync(`/proc/${v.pid}/smaps`, 'utf8'), /^VmFlags:.* uw/m, 'no area stays registered');
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tracerOf = (pid: number) => Number(/^TracerPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

test('ckpt SIGKILLed during the background copy: no thread is left waiting, the process runs on intact', async () => {
  const cli = buildCli(cleanups);
  const v = await start();
  let killed = false;
  for (let tries = 0; tries < 5 && !killed; tries++) {
    const dir = join(cleanups.tempDir('ckpt-bg-kill-'), 'img');
    const child = spawn(process.execPath, [cli, 'dump', '-t', String(v.pid), '-D', dir, '-R', '--background', '-v', '0'], { stdio: 'ignore' });
    let done = false;
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    void exited.then(() => (done = true));
    // Seized, then let go: the copy has begun.
    while (!done && tracerOf(v.pid) === 0) await sleep(1);
    while (!done && tracerOf(v.pid) !== 0) await sleep(1);
    await sleep(Math.floor(Math.random() * 20));
    if (!done) {
      child.kill('SIGKILL');
      killed = true;
    }
    await exited;
  }
  assert.ok(killed, 'no kill landed inside the copy: the test proved nothing');
  const out = await selfCheck(v, 1);
  assert.match(out, /DONE fails=0/, out);
  assert.doesNotMatch(readFileSync(`/proc/${v.pid}/smaps`, 'utf8'), /^VmFlags:.* uw/m, 'no area stays registered');
});

test('a tree of 4 processes with 2 threads each (pages shared copy-on-write): restored, every process finds its memory and registers', async () => {
  const v = startVictim('busy', { args: ['16', '2', '3'] });
  cleanups.push(() => v.cleanup());
  let pids: number[] = [];
  for (let i = 0; pids.length < 4; i++) {
    if (i > 1000) throw new Error(`busy victim not ready:\n${v.output()}`);
    await new Promise((r) => setTimeout(r, 20));
    pids = [...v.output().matchAll(/^READY pid=(\d+)$/gm)].map((m) => Number(m[1]));
  }
  const dir = cleanups.tempDir('ckpt-bg-tree-');
  const r = dump(v.pid, { imagesDir: dir, leaveRunning: true, background: true });
  assert.equal(r.processes, 4);
  for (const p of pids) process.kill(p, 'SIGKILL');
  for (const p of pids) await waitGone(p);
  const rr = restore({ imagesDir: dir });
  const rv = wrapPid(rr.pid, v.dir, v.log);
  cleanups.push(() => killAll('busy'));
  const from = v.output().length;
  for (const p of r.pids) process.kill(p, 'SIGUSR1');
  for (let i = 0; ; i++) {
    const lines = [...rv.output().slice(from).matchAll(/^CHECK pid=(\d+) (.*)$/gm)];
    if (lines.length === 4) {
      assert.ok(lines.every((l) => l[2] === 'PASS'), rv.output());
      break;
    }
    if (i > 500) throw new Error(`no CHECK from every restored process:\n${rv.output()}`);
    await new Promise((res) => setTimeout(res, 20));
  }
});

test('mlock()ed areas and mlockall(MCL_FUTURE[|MCL_ONFAULT]) come back as they were, with no smaps read while frozen', async () => {
  for (const [features, checks] of [[['mlockall'], 2], [['future'], 2], [['mlock'], 5]] as const) {
    const v = startVictim('memstate', { args: [...features] });
    cleanups.push(() => v.cleanup());
    await v.waitFor(/READY pid=\d+|SETUP FAIL.*/);
    assert.doesNotMatch(v.output(), /SETUP FAIL/);
    const dir = cleanups.tempDir('ckpt-bg-mem-');
    const r = dump(v.pid, { imagesDir: dir, leaveRunning: true, background: true });
    assert.equal(r.background?.smapsAtFreeze, 0, `${features}: smaps was read while frozen`);
    await v.kill();
    await waitGone(v.pid);
    await restoreAndCheck(v, { dir, checks, cleanups });
  }
});
