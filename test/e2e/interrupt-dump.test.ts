/**
 * ckpt killed at a random moment of a dump: the process being saved must run on as it
 * was — untraced, not stopped, the same memory map and fds (no page file lent to it
 * left open), its registers, FPU state, signal mask and memory intact (the victim
 * checks them itself, test/victims/busy.c).
 * A single process, one with 8 threads and a tree of 4, each with and without -R.
 *
 * A few tries per case by default; CKPT_TEST_LONG=1 runs 10 per case (60 in all).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { killAll, reapIfChild, startVictim, waitGone, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { buildCli } from '../helpers/bundle.js';

const cleanups = useCleanups();
const LONG = process.env['CKPT_TEST_LONG'] === '1';
const TRIES = LONG ? 10 : 2;
let cli = '';

before(() => {
  cli = buildCli(cleanups);
  cleanups.push(() => killAll('busy'));
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function status(pid: number): { tracer: number; state: string } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { tracer: Number(/^TracerPid:\s+(\d+)/m.exec(s)![1]), state: /^State:\s+(\S)/m.exec(s)![1]! };
  } catch {
    return undefined;
  }
}

async function killAndReap(pid: number): Promise<void> {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
  reapIfChild(pid);
  await waitGone(pid);
}

const maps = (pid: number) => readFileSync(`/proc/${pid}/maps`, 'utf8');
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).sort().join(' ');

interface Tree {
  v: Victim;
  pids: number[];
}

async function startTree(threads: number, children: number): Promise<Tree> {
  const v = startVictim('busy', { args: ['64', String(threads), String(children)] });
  cleanups.push(() => v.cleanup());
  const deadline = Date.now() + 20000;
  for (;;) {
    const pids = [...v.output().matchAll(/^READY pid=(\d+)$/gm)].map((m) => Number(m[1]));
    if (pids.length === children + 1) return { v, pids: [v.pid, ...pids.filter((p) => p !== v.pid)] };
    if (Date.now() > deadline) throw new Error(`busy victim not ready:\n${v.output()}`);
    await sleep(20);
  }
}

/** Asks every process of the tree to check itself; returns their verdict lines. */
async function checkTree(t: Tree): Promise<string[]> {
  const from = t.v.output().length;
  for (const pid of t.pids) process.kill(pid, 'SIGUSR1');
  const deadline = Date.now() + 10000;
  for (;;) {
    const out = t.v.output().slice(from);
    const lines = [...out.matchAll(/^CHECK pid=(\d+) (\w+)$/gm)];
    if (t.pids.every((p) => lines.some((m) => Number(m[1]) === p))) return lines.map((m) => m[0]);
    if (Date.now() > deadline) throw new Error(`no CHECK from every process within 10 s (a signal mask left blocked?):\n${out}`);
    await sleep(20);
  }
}

/** Runs `ckpt dump`, kills it `delay` ms after the root became traced; whether the dump finished first. */
async function dumpAndKill(t: Tree, opts: { leaveRunning: boolean; delay: number; signal: NodeJS.Signals; dir: string }): Promise<boolean> {
  const args = ['dump', '-t', String(t.v.pid), '-D', opts.dir, '-v', '0', ...(opts.leaveRunning ? ['-R'] : [])];
  const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  let done = false;
  void exited.then(() => (done = true));
  const deadline = Date.now() + 20000;
  while (!done && (status(t.v.pid)?.tracer ?? 0) === 0) {
    if (Date.now() > deadline) throw new Error('ckpt never seized the victim');
    await sleep(1);
  }
  if (!done) {
    await sleep(opts.delay);
    if (!done) child.kill(opts.signal);
  }
  const code = await exited;
  return code === 0 && !stderr.includes('Cannot');
}

const CASES = [
  { name: 'a single process', threads: 1, children: 0 },
  { name: 'a process with 8 threads', threads: 8, children: 0 },
  { name: 'a tree of 4 processes', threads: 2, children: 3 },
];

for (const c of CASES) {
  for (const leaveRunning of [false, true]) {
    test(`SIGKILL of ckpt at random moments of a dump${leaveRunning ? ' -R' : ''} of ${c.name}: it runs on as it was`, async () => {
      let t = await startTree(c.threads, c.children);
      let interrupted = 0;
      for (let i = 0; i < TRIES; i++) {
        const before = new Map(t.pids.map((p) => [p, maps(p)]));
        const fdsBefore = new Map(t.pids.map((p) => [p, fds(p)]));
        const dir = join(cleanups.tempDir('ckpt-kill-'), 'img');
        // Spread over a dump's whole length: seize, small state, the page copy, release.
        const delay = Math.floor(Math.random() * (i % 2 === 0 ? 40 : 400));
        const finished = await dumpAndKill(t, { leaveRunning, delay, signal: 'SIGKILL', dir });
        const committed = existsSync(join(dir, 'inventory.img'));
        rmSync(dir, { recursive: true, force: true });
        const dead = t.pids.some((p) => ['Z', 'X', undefined].includes(status(p)?.state));
        if (!leaveRunning && (finished || (committed && dead))) {
          // It was done (the images complete) before the kill: the victim was dumped and killed as asked.
          for (const p of t.pids) await killAndReap(p);
          t = await startTree(c.threads, c.children);
          continue;
        }
        if (!finished) interrupted++;
        for (const pid of t.pids) {
          let st = status(pid);
          const deadline = Date.now() + 5000;
          while (st && st.tracer !== 0 && Date.now() < deadline) {
            await sleep(5);
            st = status(pid);
          }
          assert.ok(st, `try ${i} (killed after ${delay} ms): process ${pid} is gone:\n${t.v.output().slice(-2000)}`);
          assert.equal(st.tracer, 0, `try ${i}: process ${pid} is still traced`);
          assert.ok(!['t', 'T', 'Z', 'X'].includes(st.state), `try ${i}: process ${pid} is in state ${st.state}`);
          assert.equal(maps(pid), before.get(pid), `try ${i} (killed after ${delay} ms): the memory map of ${pid} changed`);
          assert.equal(fds(pid), fdsBefore.get(pid), `try ${i} (killed after ${delay} ms): the fds of ${pid} changed`);
        }
        const verdicts = await checkTree(t);
        assert.ok(verdicts.every((l) => l.endsWith(' PASS')), `try ${i} (killed after ${delay} ms): ${verdicts.join('; ')}\n${t.v.output().slice(-2000)}`);
        assert.doesNotMatch(t.v.output(), /^FAIL/m);
      }
      assert.ok(interrupted > 0 || TRIES < 2, 'no kill landed inside a dump: the test proved nothing');
      await t.v.cleanup();
    });
  }
}
