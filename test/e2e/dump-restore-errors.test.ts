/**
 * Failures of dump and restore: each is one CkptError with a stable code, and nothing
 * is lost: a failed restore leaves no process behind and the images as they were; a
 * failed dump leaves the target running unharmed (or dead, when it was killed) and no
 * partial images.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync, copyFileSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, closeSync, readSync,
  statSync, truncateSync, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { isCkptError, type ErrorCode } from '../../src/common/errors.js';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { buildIdOf } from '../../src/resources/memory/build-id.js';
import { startVictim, VICTIM_BIN, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const tempDir = (prefix = 'ckpt-dr-err-') => cleanups.tempDir(prefix);

/** sha256 over the names and contents of every file in DIR. */
function dirSha(dir: string): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) h.update(f).update('\0').update(readFileSync(join(dir, f)));
  return h.digest('hex');
}

function expectCode(fn: () => unknown, code: ErrorCode, message?: RegExp): Error {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected a ${code} error, got none`);
  assert.ok(isCkptError(err), `expected a CkptError, got ${String(err)}`);
  assert.equal(err.code, code, `code of: ${err.message}`);
  assert.doesNotMatch(err.message, /\n/, 'a one-line message');
  if (message) assert.match(err.message, message);
  return err;
}

function track(v: Victim): Victim {
  cleanups.push(() => v.cleanup());
  return v;
}

async function counter(bin = 'counter'): Promise<Victim> {
  const v = track(startVictim(bin));
  await v.waitFor(/READY pid=\d+/);
  await v.waitFor(/TICK.*mem=PASS/);
  return v;
}

/** Waits for `n` more TICK mem=PASS lines than the log has now, and no FAIL. */
async function keepsTicking(v: Victim, n = 3): Promise<void> {
  const count = () => (v.output().match(/^TICK .* mem=PASS$/gm) ?? []).length;
  const base = count();
  const deadline = Date.now() + 15_000;
  while (count() < base + n) {
    if (Date.now() > deadline) assert.fail(`victim ${v.pid} stopped ticking:\n${v.output().slice(-1000)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.doesNotMatch(v.output(), /FAIL/);
  assert.ok(v.alive());
}

/** Dumps a fresh counter (killing it); returns it and the image dir. */
async function dumped(bin = 'counter'): Promise<{ v: Victim; dir: string }> {
  const v = await counter(bin);
  const dir = tempDir();
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  return { v, dir };
}

/** Restore must fail with CODE, leave no process with the PID and the images unchanged. */
async function restoreFails(img: { dir: string; pid: number }, code: ErrorCode, message?: RegExp): Promise<Error> {
  const { dir, pid } = img;
  const sha = dirSha(dir);
  const e = expectCode(() => {
    const r = restore({ imagesDir: dir });
    cleanups.push(() => wrapPid(r.pid, dir, '/dev/null').kill()); // should not happen
  }, code, message);
  await waitGone(pid);
  assert.equal(dirSha(dir), sha, 'images unchanged by the failed restore');
  return e;
}

function patch(file: string, offset: number, fn: (b: number) => number): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, offset);
    b[0] = fn(b[0]!) & 0xff;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

test('restore while the PID is taken fails with PID_TAKEN and leaves the original unharmed', { timeout: 60_000 }, async () => {
  const v = await counter();
  const dir = tempDir();
  dump(v.pid, { imagesDir: dir, leaveRunning: true });
  const sha = dirSha(dir);
  expectCode(() => restore({ imagesDir: dir }), 'PID_TAKEN', new RegExp(String(v.pid)));
  assert.equal(dirSha(dir), sha, 'images unchanged');
  await keepsTicking(v);
});

test('restore fails with FILE_CHANGED when the executable changed since the dump', { timeout: 60_000 }, async () => {
  const binDir = tempDir('ckpt-dr-bin-');
  const bin = join(binDir, 'counter');
  copyFileSync(join(VICTIM_BIN, 'counter'), bin);
  const { v, dir } = await dumped(bin);
  appendFileSync(bin, Buffer.from([0]));
  await restoreFails({ dir, pid: v.pid }, 'FILE_CHANGED', /counter/);
});

test('restore fails with FILE_CHANGED when the executable was rebuilt to the same size (another build ID)', { timeout: 60_000 }, async () => {
  const binDir = tempDir('ckpt-dr-bin-');
  const bin = join(binDir, 'counter');
  copyFileSync(join(VICTIM_BIN, 'counter'), bin);
  const fd = openSync(bin, 'r');
  let id: string | undefined;
  try {
    id = buildIdOf(fd);
  } finally {
    closeSync(fd);
  }
  assert.ok(id, 'the victims are linked with a build ID');
  const { v, dir } = await dumped(bin);
  const at = readFileSync(bin).indexOf(Buffer.from(id, 'hex'));
  assert.ok(at > 0);
  patch(bin, at, (b) => b ^ 0xff);
  await restoreFails({ dir, pid: v.pid }, 'FILE_CHANGED', /counter changed since the dump \(build ID/);
});

test('restore fails with FILE_CHANGED when a privately mapped data file changed since the dump', { timeout: 60_000 }, async () => {
  const v = track(startVictim('dr-big', { args: ['.', '8'] }));
  await v.waitFor(/^ARMED$/m, 60_000);
  const dir = tempDir();
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  appendFileSync(join(v.dir, 'mapped.dat'), Buffer.from([0]));
  await restoreFails({ dir, pid: v.pid }, 'FILE_CHANGED', /mapped\.dat/);
});

test('restore fails with BAD_IMAGE when the page image is truncated', { timeout: 60_000 }, async () => {
  const { v, dir } = await dumped();
  const pages = join(dir, `pages-${v.pid}.img`);
  truncateSync(pages, statSync(pages).size - 4096);
  await restoreFails({ dir, pid: v.pid }, 'BAD_IMAGE', /pages/);
});

test('restore fails with BAD_IMAGE when a byte of the memory metadata is flipped', { timeout: 60_000 }, async () => {
  const { v, dir } = await dumped();
  const mm = join(dir, `mm-${v.pid}.img`);
  patch(mm, Math.floor(statSync(mm).size / 2), (b) => b ^ 0x01);
  await restoreFails({ dir, pid: v.pid }, 'BAD_IMAGE', /mm-/);
});

test('restore fails with BAD_IMAGE when an image is of a newer format version', { timeout: 60_000 }, async () => {
  const { v, dir } = await dumped();
  // Header: magic (8 bytes), then the format major as a u32 LE at offset 8.
  patch(join(dir, `core-${v.pid}.img`), 8, (b) => b + 1);
  await restoreFails({ dir, pid: v.pid }, 'BAD_IMAGE', /newer/);
});

test('dump of a PID that does not exist fails with NO_PROCESS and leaves no directory', () => {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  let pid = max - 1;
  while (existsSync(`/proc/${pid}`)) pid--;
  const dir = join(tempDir(), 'images');
  expectCode(() => dump(pid, { imagesDir: dir }), 'NO_PROCESS');
  assert.ok(!existsSync(dir), 'no images directory left');
});

for (const delay of ['0.01', '0.3']) {
  test(`a target killed ${delay} s into its dump: the dump fails with NO_PROCESS and no images, or completes`, { timeout: 120_000 }, async (t) => {
    const v = track(startVictim('dr-big', { args: ['.', '256'] }));
    await v.waitFor(/^ARMED$/m, 60_000);
    const dir = join(tempDir(), 'images');
    const killer = spawn('sh', ['-c', `sleep ${delay}; kill -9 ${v.pid}`], { stdio: 'ignore' });
    const killed = new Promise((r) => killer.on('exit', r));
    let err: unknown;
    try {
      dump(v.pid, { imagesDir: dir });
    } catch (e) {
      err = e;
    }
    await killed;
    await waitGone(v.pid);
    t.diagnostic(err ? `dump failed: ${String(err)}; images left: ${existsSync(dir)}` : 'dump completed');
    if (err) {
      assert.ok(isCkptError(err), `a CkptError, got ${String(err)}`);
      assert.equal(err.code, 'NO_PROCESS', err.message);
      assert.doesNotMatch(err.message, /\n/);
      assert.ok(!existsSync(dir), `no images left after: ${err.message}`);
    } else {
      assert.ok(existsSync(join(dir, 'inventory.img')), 'a complete image set');
    }
  });
}

test('disk full during dump: IO error, no partial files, the victim runs on unharmed', { timeout: 120_000 }, async (t) => {
  const mnt = tempDir('ckpt-dr-tmpfs-');
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) {
    t.skip(`cannot mount a tmpfs: ${m.stderr.trim()}`);
    return;
  }
  cleanups.push(() => void spawnSync('umount', [mnt]));
  const v = track(startVictim('dr-big', { args: ['.', '8'] }));
  await v.waitFor(/^ARMED$/m, 60_000);
  const pre = v.output();
  const dir = join(mnt, 'images');
  mkdirSync(dir);
  const e = expectCode(() => dump(v.pid, { imagesDir: dir }), 'IO');
  t.diagnostic(e.message);
  assert.deepEqual(existsSync(dir) ? readdirSync(dir) : [], [], 'no partial image files');
  assert.ok(v.alive(), 'the victim is still running');
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/^DONE fails=\d+$/m, 30_000);
  const post = v.output().slice(pre.length);
  assert.doesNotMatch(post, /FAIL/, post);
  assert.match(post, /^PASS ymm15$|^DONE fails=0$/m);
  assert.match(post, /^DONE fails=0$/m);
});
