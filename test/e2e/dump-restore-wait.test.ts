/**
 * Processes dumped while blocked in a system call: after restore the call goes on (or
 * is restarted) the way it would have without the checkpoint, never failing with
 * EINTR or returning early. The victims report PASS/FAIL per return.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const cleanups = useCleanups();
const tempDir = () => cleanups.tempDir('ckpt-dr-wait-');

function passes(text: string): number {
  return (text.match(/^PASS /gm) ?? []).length;
}

async function started(name: string, args: string[], opts: { passes?: number } = {}): Promise<Victim> {
  const v = startVictim(name, { args });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  if (opts.passes) await v.waitFor(new RegExp(`(^PASS .*\\n[^]*){${opts.passes}}`, 'm'), 20_000);
  return v;
}

/** Dumps V (killing it) and restores it in-process; returns the restored process. */
async function dumpRestore(v: Victim): Promise<{ rv: Victim; before: string }> {
  const dir = tempDir();
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const before = v.output();
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(r.pid, v.pid, 'same PID');
  return { rv, before };
}

async function newPasses(rv: Victim, before: string, n: number): Promise<string> {
  const timeoutMs = 30_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const post = rv.output().slice(before.length);
    assert.doesNotMatch(post, /FAIL/, `no FAIL after restore:\n${post}`);
    if (passes(post) >= n) return post;
    if (Date.now() > deadline) throw new Error(`no ${n} PASS lines after restore; got:\n${post}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('nanosleep goes on after restore without EINTR or an early return (sleeper ns)', { timeout: 60_000 }, async () => {
  const v = await started('sleeper', ['ns'], { passes: 2 });
  const { rv, before } = await dumpRestore(v);
  await newPasses(rv, before, 3);
  assert.ok(rv.alive());
});

test('pause() stays paused after restore and returns only for a signal', { timeout: 60_000 }, async () => {
  const v = await started('dr-wait', ['pause']);
  await new Promise((r) => setTimeout(r, 100)); // let it enter pause()
  const { rv, before } = await dumpRestore(v);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(rv.output(), before, 'pause() did not return by itself after restore');
  kill(rv.pid, SIG.SIGUSR1);
  await newPasses(rv, before, 1);
  kill(rv.pid, SIG.SIGUSR1);
  const post = await newPasses(rv, before, 2);
  assert.match(post, /^PASS pause n=2 usr1=2$/m);
});

test('poll(NULL, 0, 3000) goes on after restore: returns 0, no EINTR', { timeout: 60_000 }, async () => {
  const v = await started('dr-wait', ['poll0']);
  await new Promise((r) => setTimeout(r, 1000)); // in the middle of the first poll
  const { rv, before } = await dumpRestore(v);
  await newPasses(rv, before, 2);
  assert.ok(rv.alive());
});

for (const mode of ['epoll', 'sigwait']) {
  const call = mode === 'epoll' ? 'epoll_wait' : 'sigtimedwait';
  test(`${call} (which a stop makes fail with EINTR) goes on through a leave-running dump and after restore`, { timeout: 60_000 }, async () => {
    const v = await started('dr-wait', [mode]);
    await new Promise((r) => setTimeout(r, 1000)); // in the middle of the first wait
    const before = v.output();
    dump(v.pid, { imagesDir: tempDir(), leaveRunning: true });
    await newPasses(v, before, 1);
    await new Promise((r) => setTimeout(r, 1000));
    const { rv, before: atDump } = await dumpRestore(v);
    await newPasses(rv, atDump, 1);
    assert.ok(rv.alive());
  });
}

test('read(0) blocked at dump reads the stdin it is given with --inherit-fd after a CLI restore', { timeout: 60_000 }, async () => {
  const v = await started('dr-wait', ['read', 'fifo']);
  // The victim makes the fifo and opens it O_RDWR as fd 0; nothing writes it, so it blocks in read(0).
  await new Promise((r) => setTimeout(r, 100));
  const dir = tempDir();
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const before = v.output();

  // Its fd 0 was the FIFO: the CLI's own stdin takes its place only when asked.
  const cli = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'restore', '-D', dir, '--inherit-fd', `fd[0]:${v.dir}/fifo`], {
    cwd: ROOT,
    stdio: ['pipe', 'inherit', 'pipe'],
  });
  let stderr = '';
  cli.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
  const rv = wrapPid(v.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  cleanups.push(() => void cli.kill('SIGKILL'));

  const deadline = Date.now() + 20_000;
  while (!rv.alive()) {
    if (cli.exitCode !== null) assert.fail(`ckpt restore exited ${cli.exitCode}: ${stderr}`);
    if (Date.now() > deadline) assert.fail(`no restored process; ckpt restore said: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  cli.stdin.write('hello\n');
  await rv.waitFor(/^PASS read n=1 data=hello$/m, 20_000).catch((e: Error) => assert.fail(`${e.message}\nckpt restore: ${stderr}`));
  cli.stdin.write('again\n');
  await rv.waitFor(/^PASS read n=2 data=again$/m, 20_000);
  cli.stdin.end();
  await rv.waitFor(/^EOF$/m, 20_000);
  assert.equal(await exited, 0, `ckpt restore exits with the restored process's status; stderr: ${stderr}`);
  const post = rv.output().slice(before.length);
  assert.doesNotMatch(post, /FAIL/);
});
