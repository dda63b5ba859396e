/**
 * Every error the CLI can be driven into cheaply ends as ONE line on stderr,
 * "ckpt: Cannot …", with its exit code (1 an error, 2 a usage error) and no Node
 * stack frame ("    at "). Runs the built CLI (bin/ckpt.js over dist/: `npm run
 * build` first), as a user would.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { killQuietly, startVictim, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { chownTree, tamperImage } from '../helpers/tamper.js';

const root = new URL('../..', import.meta.url).pathname;
const BIN = join(root, 'bin/ckpt.js');
const cleanups = useCleanups();
const AS_NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups', '--'];

function ckpt(args: string[], opts: { asNobody?: boolean } = {}): { status: number | null; stderr: string } {
  const cmd = opts.asNobody ? ['/usr/bin/setpriv', ...AS_NOBODY, process.execPath, BIN, ...args] : [process.execPath, BIN, ...args];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd: '/', encoding: 'utf8', env: { ...process.env, CKPT_DEBUG: '' } });
  return { status: r.status, stderr: r.stderr };
}

/** One line, "ckpt: …", no stack frame, the exit code and message expected. */
function fails(args: string[], want: { status: number; message: RegExp; asNobody?: boolean }): void {
  const r = ckpt(args, want);
  const what = `ckpt ${args.join(' ')}`;
  assert.doesNotMatch(r.stderr, /^ {4}at /m, `${what}: no stack trace`);
  assert.match(r.stderr, /^ckpt: [^\n]+\n$/, `${what}: one line on stderr, got:\n${r.stderr}`);
  assert.match(r.stderr, want.message, what);
  assert.equal(r.status, want.status, `${what}: exit code (${r.stderr.trim()})`);
}

let victim: Victim;
let images: string;

before(async () => {
  assert.ok(existsSync(join(root, 'dist/bin/ckpt.cjs')), 'npm run build first');
  victim = startVictim('counter');
  cleanups.push(() => victim.cleanup());
  await victim.waitFor(/TICK/);
  images = join(cleanups.tempDir('ckpt-clierr-'), 'images');
  const d = ckpt(['dump', '-t', String(victim.pid), '-D', images, '-R']);
  assert.equal(d.status, 0, d.stderr);
});

test('bad options and arguments are usage errors (exit 2)', () => {
  fails(['dump', '--no-such-option', '-t', '1', '-D', '/tmp/x'], { status: 2, message: /unknown option/ });
  fails(['dump', '-t', 'abc', '-D', '/tmp/x'], { status: 2, message: /"abc" is not a PID/ });
  fails(['restore'], { status: 2, message: /required option '-D/ });
  fails(['no-such-command'], { status: 2, message: /unknown command/ });
});

test('dump: no such process, an unwritable or non-empty directory', () => {
  fails(['dump', '-t', '4194300', '-D', join(cleanups.tempDir('ckpt-clierr-'), 'x')], { status: 1, message: /process 4194300 does not exist/ });
  fails(['dump', '-t', String(victim.pid), '-D', '/proc/ckpt-no/images', '-R'], { status: 1, message: /^ckpt: Cannot create image directory \/proc\/ckpt-no\/images: / });
  // A directory with an earlier set is replaced (cli-criu.test.ts); anything else non-empty is refused.
  const other = cleanups.tempDir('ckpt-clierr-');
  writeFileSync(join(other, 'notes.txt'), 'x');
  fails(['dump', '-t', String(victim.pid), '-D', other, '-R'], { status: 2, message: /it is not empty and it holds no ckpt image set/ });
});

test('restore: a missing, foreign or non-directory -D says so', () => {
  const dir = cleanups.tempDir('ckpt-clierr-');
  fails(['restore', '-D', join(dir, 'missing')], { status: 2, message: /the directory does not exist/ });
  fails(['restore', '-D', dir], { status: 2, message: /not a ckpt image directory/ });
  writeFileSync(join(dir, 'file'), 'x');
  fails(['restore', '-D', join(dir, 'file')], { status: 2, message: /not a directory/ });
});

test('restore: the PID is in use', () => {
  fails(['restore', '-D', images, '-d'], { status: 1, message: new RegExp(`PID ${victim.pid} is in use`) });
});

test('restore --pidfile: existing, a symlink, in a missing directory — refused before anything is built', () => {
  const dir = cleanups.tempDir('ckpt-clierr-');
  const existing = join(dir, 'taken.pid');
  writeFileSync(existing, 'mine\n');
  fails(['restore', '-D', images, '-d', '--pidfile', existing], { status: 2, message: /pidfile .* it already exists/ });
  assert.equal(readFileSync(existing, 'utf8'), 'mine\n', 'an existing pidfile is never overwritten');
  const link = join(dir, 'link.pid');
  symlinkSync(join(dir, 'victim-file'), link);
  fails(['restore', '-D', images, '-d', '--pidfile', link], { status: 2, message: /pidfile .* it is a symbolic link/ });
  assert.ok(!existsSync(join(dir, 'victim-file')), 'a symlink is never followed');
  fails(['restore', '-D', images, '-d', '--pidfile', join(dir, 'no/x.pid')], { status: 2, message: /pidfile .* its directory does not exist/ });
});

test('-o through a symlink is refused, its target untouched', () => {
  const dir = cleanups.tempDir('ckpt-clierr-');
  const target = join(dir, 'precious');
  writeFileSync(target, 'keep\n');
  symlinkSync(target, join(dir, 'log'));
  fails(['restore', '-D', images, '-d', '-o', join(dir, 'log')], { status: 2, message: /log file .* symbolic link/ });
  fails(['dump', '-t', String(victim.pid), '-D', join(dir, 'imgs'), '-R', '-o', join(dir, 'log')], { status: 2, message: /log file .* symbolic link/ });
  assert.equal(readFileSync(target, 'utf8'), 'keep\n');
});

test('restore: a corrupted image and tampered credentials', () => {
  const base = cleanups.tempDir('ckpt-clierr-');
  const bad = join(base, 'corrupt');
  cpSync(images, bad, { recursive: true });
  const core = join(bad, `core-${victim.pid}.img`);
  const bytes = readFileSync(core);
  bytes[bytes.length - 2] = bytes[bytes.length - 2]! ^ 0x55;
  writeFileSync(core, bytes);
  fails(['restore', '-D', bad, '-d'], { status: 1, message: /core-\d+\.img/ });

  chmodSync(base, 0o755);
  const theirs = join(base, 'theirs');
  cpSync(images, theirs, { recursive: true });
  tamperImage(theirs, { name: `core-${victim.pid}`, kind: 'core', change: (c) => {
    ((c['resources'] as Record<string, Record<string, unknown>>)['creds']!)['uid'] = [0, 0, 0, 0];
  } });
  chownTree(theirs, 65534, 65534);
  fails(['restore', '-D', theirs, '-d'], { status: 1, message: /more privilege than the images' owner \(uid 65534\)/ });
});

test('an unprivileged dump', async () => {
  // The victim (nobody) writes into a pipe its root shell made: reading what the pipe
  // holds needs a read end, which only the pipe's owner may open through /proc. (Today
  // an unprivileged dump stops earlier, at /proc/PID/map_files, which needs
  // CAP_CHECKPOINT_RESTORE: either way one line, exit 1.)
  const dir = cleanups.tempDir('ckpt-clierr-');
  chmodSync(dir, 0o777);
  const sleeper = join(root, 'test/victims/bin/sleeper');
  const v = startVictim('/bin/sh', { args: ['-c', `/usr/bin/setpriv ${AS_NOBODY.join(' ')} ${sleeper} | cat`] });
  cleanups.push(() => v.cleanup());
  const pid = Number((await v.waitFor(/READY pid=(\d+)/))[1]);
  cleanups.push(() => killQuietly([pid]));
  fails(['dump', '-t', String(pid), '-D', join(dir, 'images'), '-R'], { status: 1, message: /^ckpt: Cannot dump (fd \d+ of )?process \d+: /, asNobody: true });
});
