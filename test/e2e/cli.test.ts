/**
 * The CLI end to end, as a user runs it: ckpt as a subprocess (from the sources, so a
 * stale dist does not matter) against the C counter victim. Covers dump/show/restore
 * and the one-line errors for a missing process, a missing image dir and a PID in use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const root = new URL('../..', import.meta.url).pathname;
const cleanups = useCleanups();
const tmp = () => cleanups.tempDir('ckpt-cli-');

function ckpt(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], { cwd: root, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const ticks = (v: Victim) => [...v.output().matchAll(/^TICK pid=(\d+) counter=(\d+) mem=(\w+)$/gm)].map((m) => ({ counter: Number(m[2]), mem: m[3] }));

/** Waits until the victim's log has at least `n` TICK lines. */
async function ticksAtLeast(v: Victim, n: number, timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (ticks(v).length < n) {
    if (Date.now() > deadline) throw new Error(`victim ${v.pid}: fewer than ${n} TICK lines after ${timeoutMs} ms:\n${v.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function counter(): Promise<{ v: Victim; countFile: string }> {
  const countFile = join(tmp(), 'count');
  const v = startVictim('counter', { args: [countFile] });
  cleanups.push(() => v.cleanup());
  await ticksAtLeast(v, 2);
  return { v, countFile };
}

test('dump, show and restore -d a counter', async () => {
  const { v } = await counter();
  const images = join(tmp(), 'images');
  const d = ckpt('dump', '-t', String(v.pid), '-D', images);
  assert.equal(d.status, 0, d.stderr);
  assert.match(d.stderr, new RegExp(`^dumped pid ${v.pid}: \\d+ pages \\(.+\\) in \\d+ ms, frozen \\d+ ms\\n$`));
  await waitGone(v.pid);
  const before = ticks(v);
  const last = before.at(-1)!.counter;

  assert.equal(statSync(images).mode & 0o777, 0o700);
  for (const f of readdirSync(images)) assert.equal(statSync(join(images, f)).mode & 0o777, 0o600, f);

  const s = ckpt('show', images, '--json');
  assert.equal(s.status, 0, s.stderr);
  const shown = JSON.parse(s.stdout);
  assert.equal(shown.process.rootPid, v.pid);
  assert.equal(shown.processes[0].pid, v.pid);
  assert.ok(shown.processes[0].mm.vmas.length > 5);
  assert.ok(shown.processes[0].mm.vmas.some((x: { perms: string; file?: string }) => x.perms === 'r-xp' && x.file?.endsWith('/counter')));
  assert.match(shown.processes[0].core.threads[0].regs.rip, /^0x[0-9a-f]+$/);
  assert.equal(ckpt('show', images).status, 0);

  const pidfile = join(tmp(), 'pid');
  const r = ckpt('restore', '-D', images, '-d', '--pidfile', pidfile);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout + r.stderr, '');
  assert.equal(Number(readFileSync(pidfile, 'utf8').trim()), v.pid);
  const restored = wrapPid(v.pid, v.dir, v.log);
  await ticksAtLeast(restored, before.length + 3);
  const now = ticks(v).slice(before.length);
  assert.ok(now.length >= 3);
  assert.ok(now[0]!.counter > last, `counter went on from ${last}: ${now[0]!.counter}`);
  assert.ok(now.every((t) => t.mem === 'PASS'), v.output());
  await restored.kill();
});

test('dump of a missing process: one line, exit 1, no image dir left', () => {
  const images = join(tmp(), 'images');
  const r = ckpt('dump', '-t', '4000000', '-D', images);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^ckpt: .+\n$/);
  assert.equal(existsSync(images), false);
});

test('restore of a missing dir: one line, a usage error (exit 2)', () => {
  const r = ckpt('restore', '-D', '/nonexistent/ckpt-images');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^ckpt: .+: the directory does not exist\n$/);
});

test('restore while the PID is still in use: refused, the original runs on', async () => {
  const { v } = await counter();
  const images = join(tmp(), 'images');
  const d = ckpt('dump', '-t', String(v.pid), '-D', images, '-R', '-v', '0');
  assert.equal(d.status, 0, d.stderr);
  assert.equal(d.stderr, '');
  const seen = ticks(v).length;
  const r = ckpt('restore', '-D', images);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^ckpt: .*in use.*\n$/);
  await ticksAtLeast(v, seen + 2);
  assert.ok(v.alive());
  assert.ok(ticks(v).every((t) => t.mem === 'PASS'));
});

test('dump -v 3 of a 64 MiB process says where the images are; leave-running keeps it whole', async () => {
  const v = startVictim('bench-mem', { args: ['64'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/, 30_000);
  const images = join(tmp(), 'images');
  const d = ckpt('dump', '-t', String(v.pid), '-D', images, '-R', '-v', '3');
  assert.equal(d.status, 0, d.stderr);
  // From -v 3 on, every line starts with the time since start, as CRIU's.
  assert.match(d.stderr, new RegExp(`^\\(\\d\\d\\.\\d{6}\\) images in ${images}; pid ${v.pid} left running$`, 'm'));
  const from = v.output().length;
  process.kill(v.pid, 'SIGUSR1');
  await v.waitFor(new RegExp(`^[^]{${from}}[^]*(PASS|FAIL)`), 30_000);
  assert.match(v.output().slice(from), /^PASS/m, 'the process checks its memory after the dump');
});

test('show --json into a slow pipe writes all of it (the output is larger than a pipe buffer)', async () => {
  const v = startVictim('manymaps', { args: ['2000'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const images = join(tmp(), 'images');
  assert.equal(ckpt('dump', '-t', String(v.pid), '-D', images, '-R').status, 0);
  const whole = ckpt('show', images, '--json').stdout;
  assert.ok(whole.length > 256 * 1024, `${whole.length} bytes: too small to fill a pipe`);
  const cli = [process.execPath, '--import', 'tsx', join(root, 'src/cli/main.ts'), 'show', images, '--json'].join(' ');
  const slow = spawnSync('bash', ['-c', `${cli} | (sleep 0.5; wc -c)`], { cwd: root, encoding: 'utf8' });
  assert.equal(Number(slow.stdout.trim()), Buffer.byteLength(whole));
});
