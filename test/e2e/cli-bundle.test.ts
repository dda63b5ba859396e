/**
 * The CLI as installed: bin/ckpt.js running the esbuild bundle (scripts/bundle.mjs)
 * through its V8 code cache. The bundle is built aside (a copy of bin/ plus dist/bin/
 * in a temporary directory), so a stale dist does not matter. Covers a dump and
 * restore through the bundle, and every way a code cache can be missing, stale,
 * corrupt or unsafe: the CLI must then run exactly as without one, silently.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const root = new URL('../..', import.meta.url).pathname;
const cleanups = useCleanups();
let top = '';
let install = '';

before(() => {
  top = cleanups.tempDir('ckpt-bundle-');
  install = join(top, 'ckpt');
  mkdirSync(join(install, 'bin'), { recursive: true });
  for (const f of ['ckpt.js', 'package.json']) copyFileSync(join(root, 'bin', f), join(install, 'bin', f));
  symlinkSync(join(root, 'node_modules'), join(install, 'node_modules'));
  const b = spawnSync(process.execPath, [join(root, 'scripts/bundle.mjs'), join(install, 'dist/bin')], { cwd: root, encoding: 'utf8' });
  assert.equal(b.status, 0, b.stderr);
});

let dirs = 0;
function cacheDir(): string {
  return join(top, `cache-${++dirs}`);
}

function ckpt(cache: string | undefined, args: string[], env: Record<string, string> = {}) {
  const e: NodeJS.ProcessEnv = { ...process.env };
  delete e.CKPT_DEBUG;
  Object.assign(e, env);
  if (cache) e.CKPT_CACHE_DIR = cache;
  const r = spawnSync(process.execPath, [join(install, 'bin/ckpt.js'), ...args], { encoding: 'utf8', env: e });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `--version` and checks it worked: the one thing a broken cache must never change. */
function version(cache: string): void {
  const r = ckpt(cache, ['--version']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '0.1.0\n');
  assert.equal(r.stderr, '');
}

function bundleHash(): string {
  const m = /^\/\/ ckpt-bundle sha256:([0-9a-f]{64})\n/.exec(readFileSync(join(install, 'dist/bin/ckpt.cjs'), 'utf8'));
  assert.ok(m, 'hash line of the bundle');
  return m[1]!;
}

/** The first line of a cache file. */
function header(f: string | Buffer): string {
  return (typeof f === 'string' ? readFileSync(f) : f).toString('latin1').split('\n')[0]!;
}

/** Identity of a file: a cache that was used is left alone, one that was not is replaced (a new inode). */
const ino = (f: string) => statSync(f).ino;

test('the launcher keeps one cache per command of the CLI', () => {
  const src = readFileSync(join(root, 'bin/ckpt.js'), 'utf8');
  const m = /const COMMANDS = \[([^\]]*)\]/.exec(src);
  assert.ok(m, 'COMMANDS list in bin/ckpt.js');
  const listed = [...m[1]!.matchAll(/'([a-z-]+)'/g)].map((x) => x[1]);
  assert.deepEqual([...listed].sort(), COMMANDS.map((c) => c.name).sort());
});

test('a cache is written after a successful run, private, and used by the next run', () => {
  const dir = cacheDir();
  version(dir);
  const file = join(dir, 'other.v8');
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const h = header(file);
  assert.ok(h.startsWith(`ckpt-code-cache 2 ${bundleHash()} `), h);
  assert.ok(h.endsWith(` ${process.version} ${process.arch}`), h);
  const first = ino(file);
  version(dir);
  version(dir);
  assert.equal(ino(file), first, 'an accepted cache is not written again');
  assert.deepEqual(readdirSync(dir), ['other.v8']);
  // --help is "other" too; each command has its own file.
  assert.equal(ckpt(dir, ['--help']).status, 0);
  assert.equal(ckpt(dir, ['ps', '--help']).status, 0);
  assert.deepEqual(readdirSync(dir).sort(), ['other.v8', 'ps.v8']);
});

test('a stale, corrupt, truncated or empty cache is ignored and replaced', () => {
  const dir = cacheDir();
  version(dir);
  const file = join(dir, 'other.v8');
  const good = readFileSync(file);
  const nl = good.indexOf(10) + 1;
  const cases: [string, Buffer][] = [
    ['other bundle', Buffer.from(good.toString('latin1').replace(bundleHash(), '0'.repeat(64)), 'latin1')],
    ['other node', Buffer.from(good.toString('latin1').replace(process.version, 'v1.0.0'), 'latin1')],
    ['garbage data', Buffer.concat([good.subarray(0, nl), Buffer.alloc(good.length - nl, 0x5a)])],
    ['flipped data', Buffer.concat([good.subarray(0, nl), good.subarray(nl).map((b, i) => (i > 64 && i < 4096 ? b ^ 0xff : b))])],
    ['truncated', good.subarray(0, nl + 100)],
    ['header only', good.subarray(0, nl)],
    ['empty', Buffer.alloc(0)],
    ['no header', good.subarray(nl)],
  ];
  for (const [what, bytes] of cases) {
    writeFileSync(file, bytes, { mode: 0o600 });
    const before = ino(file);
    version(dir);
    const now = ino(file);
    assert.notEqual(now, before, `${what}: replaced`);
    assert.equal(header(file), header(good), `${what}: rewritten for this bundle`);
    version(dir);
    assert.equal(ino(file), now, `${what}: the new one is used`);
  }
});

test('a cache anyone else could have written is never read', () => {
  const dir = cacheDir();
  version(dir);
  const file = join(dir, 'other.v8');
  const good = readFileSync(file);

  // A valid cache, but writable by group or others, or not ours: treated as missing (replaced).
  for (const mode of [0o666, 0o620, 0o602]) {
    writeFileSync(file, good);
    chmodSync(file, mode);
    const before = ino(file);
    version(dir);
    assert.notEqual(ino(file), before, `mode ${mode.toString(8)}`);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  }
  writeFileSync(file, good, { mode: 0o600 });
  chownSync(file, 65534, 65534);
  let before = ino(file);
  version(dir);
  assert.notEqual(ino(file), before, 'owned by nobody');
  assert.equal(statSync(file).uid, process.geteuid!());

  // A symbolic link is not followed; replacing it leaves its target alone.
  const target = join(top, 'target');
  writeFileSync(target, good, { mode: 0o600 });
  rmSync(file);
  symlinkSync(target, file);
  version(dir);
  assert.ok(statSync(file).isFile() && !readdirSync(dir).includes('target'));
  assert.deepEqual(readFileSync(target), good);

  // A cache directory others can write, or not ours: neither read nor written.
  for (const [what, fix] of [
    ['mode 777', (d: string) => chmodSync(d, 0o777)],
    ['mode 770', (d: string) => chmodSync(d, 0o770)],
    ['owned by nobody', (d: string) => chownSync(d, 65534, 65534)],
  ] as const) {
    const d = cacheDir();
    mkdirSync(d, { mode: 0o700 });
    fix(d);
    version(d);
    assert.deepEqual(readdirSync(d), [], what);
    writeFileSync(join(d, 'other.v8'), good, { mode: 0o600 });
    before = ino(join(d, 'other.v8'));
    version(d);
    assert.equal(ino(join(d, 'other.v8')), before, what);
  }
});

test("no directory is created inside one that is not ours (root with another user's HOME)", () => {
  const home = join(top, 'alice');
  mkdirSync(home, { mode: 0o755 });
  chownSync(home, 65534, 65534);
  version(join(home, '.cache', 'ckpt'));
  assert.deepEqual(readdirSync(home), []);
  const r = spawnSync(process.execPath, [join(install, 'bin/ckpt.js'), '--version'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: home },
  });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readdirSync(home), []);
});

test('no cache when turned off, when the run failed, or with CKPT_DEBUG=1 (which maps stacks to src/)', () => {
  const dir = cacheDir();
  assert.equal(ckpt(dir, ['--version'], { CKPT_CODE_CACHE: '0' }).status, 0);
  assert.equal(existsSync(dir), false);
  const r = ckpt(dir, ['restore', '-D', join(top, 'nonexistent')]);
  assert.equal(r.status, 2, 'a missing image directory is a usage error');
  assert.match(r.stderr, /^ckpt: .+\n$/);
  assert.equal(existsSync(join(dir, 'restore.v8')), false);
  const d = ckpt(dir, ['restore', '-D', join(top, 'nonexistent')], { CKPT_DEBUG: '1' });
  assert.equal(d.status, 2);
  assert.match(d.stderr, /^ckpt: .+\n/);
  assert.match(d.stderr, /\/src\/[a-z/]+\.ts:\d+/, 'stack mapped to the sources');
  assert.equal(existsSync(join(dir, 'restore.v8')), false);
});

test('without HOME or a cache directory it runs uncached', () => {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH };
  const r = spawnSync(process.execPath, [join(install, 'bin/ckpt.js'), '--version'], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '0.1.0\n');
});

test('without any build: one line saying what to run, exit 70', () => {
  const bare = join(top, 'bare');
  mkdirSync(join(bare, 'bin'), { recursive: true });
  for (const f of ['ckpt.js', 'package.json']) copyFileSync(join(root, 'bin', f), join(bare, 'bin', f));
  const r = spawnSync(process.execPath, [join(bare, 'bin/ckpt.js'), '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 70);
  assert.match(r.stderr, /^ckpt: cannot start: .*dist\/bin\/ckpt\.cjs is missing; run "npm install" \(or "npm run build"\) first\n$/);
});

test('dump and restore -d of a counter through the bundle, with a cold then a warm cache', async () => {
  const dir = cacheDir();
  const cached: number[] = [];
  for (let round = 0; round < 2; round++) {
    const v = startVictim('counter');
    cleanups.push(() => v.cleanup());
    await v.waitFor(/READY/);
    await v.waitFor(/TICK/);
    const images = join(top, `images-${round}`);
    const d = ckpt(dir, ['dump', '-t', String(v.pid), '-D', images]);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stderr, new RegExp(`^dumped pid ${v.pid}: \\d+ pages`));
    await waitGone(v.pid);
    const seen = (v.output().match(/^TICK /gm) ?? []).length;
    const r = ckpt(dir, ['restore', '-D', images, '-d']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout + r.stderr, '');
    const restored = wrapPid(v.pid, v.dir, v.log);
    cleanups.push(() => restored.cleanup());
    const deadline = Date.now() + 10_000;
    while ((v.output().match(/^TICK /gm) ?? []).length < seen + 2) {
      assert.ok(Date.now() < deadline, `no TICK after restore:\n${v.output()}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.doesNotMatch(v.output(), /FAIL/);
    await restored.kill();
    cached.push(ino(join(dir, 'dump.v8')), ino(join(dir, 'restore.v8')));
  }
  assert.deepEqual(cached.slice(2), cached.slice(0, 2), 'the second round used the caches of the first');
});
