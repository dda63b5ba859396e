/**
 * A restore never grants more than the images' owner had (docs/security.md). The
 * victim runs as nobody; root dumps it and gives the image directory to nobody, as
 * if nobody had made the dump. nobody then edits the images (checksums recomputed as
 * src/images does): asking for uid 0 or capabilities is refused, and a file path
 * changed to a root-only file makes the restore fail with PERMISSION, nothing left
 * behind. The untouched set restores, and the victim checks its own memory (and its
 * pipes and unix sockets, which ckpt builds while holding the owner's capabilities).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { isCkptError } from '../../src/common/errors.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { chownTree, tamperImage } from '../helpers/tamper.js';

const cleanups = useCleanups();
const NOBODY = 65534;
const AS_NOBODY = ['--reuid=65534', '--regid=65534', '--clear-groups', '--'];
/** Every capability we (root) hold: what an attacker would ask of root's restore. */
const ALL_CAPS = BigInt(`0x${/^CapEff:\s+([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`).toString();

function uids(pid: number): number[] {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m);
  return m ? m.slice(1).map(Number) : [];
}

/** A victim running as nobody, with its cwd, log and count file where nobody can reach them. */
async function nobodyVictim(name: string, home: string, args: string[] = []): Promise<Victim> {
  const v = startVictim('/usr/bin/setpriv', { args: [...AS_NOBODY, join(new URL('../victims/bin/', import.meta.url).pathname, name), ...args], cwd: home });
  cleanups.push(() => v.cleanup());
  chmodSync(v.dir, 0o711);
  chownSync(v.log, NOBODY, NOBODY);
  await v.waitFor(/READY pid=\d+/);
  return v;
}

async function passes(v: Victim, from: number): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const m = v.output().slice(from).match(/TICK [^\n]*(PASS|FAIL)/);
    if (m) return m[1]!;
    if (Date.now() > deadline) throw new Error(`pid ${v.pid}: no TICK after restore; output:\n${v.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function copyOf(dir: string, tag: string): string {
  const to = `${dir}-${tag}`;
  cpSync(dir, to, { recursive: true, preserveTimestamps: true });
  chownTree(to, NOBODY, NOBODY);
  return to;
}

async function refused(dir: string, pid: number, pattern: RegExp): Promise<void> {
  assert.throws(() => restore({ imagesDir: dir }), (e: unknown) => {
    assert.ok(isCkptError(e, 'PERMISSION'), `PERMISSION expected, got ${String(e)}`);
    assert.match((e as Error).message, pattern);
    return true;
  });
  // Killed by the failed restore; reaped here (we are its parent, as the restore's caller).
  await waitGone(pid, 5000);
}

test('images owned by nobody: tampered credentials and paths are refused, the untouched set restores', { timeout: 60_000 }, async () => {
  const base = cleanups.tempDir('ckpt-sec-');
  chmodSync(base, 0o755);
  const home = join(base, 'home');
  mkdirSync(home, { mode: 0o755 });
  chownSync(home, NOBODY, NOBODY);
  // A root-only file in a directory anyone may search: only its mode protects it.
  const secret = join(base, 'secret');
  writeFileSync(secret, 'root only\n', { mode: 0o600 });
  const count = join(home, 'count');

  const v = await nobodyVictim('counter', home, [count]);
  assert.deepEqual(uids(v.pid), [NOBODY, NOBODY, NOBODY, NOBODY]);
  const dir = join(home, 'images');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  chownTree(dir, NOBODY, NOBODY);
  const core = { name: `core-${v.pid}`, kind: 'core' };

  const root = copyOf(dir, 'uid0');
  tamperImage(root, { ...core, change: (c) => {
    const creds = (c['resources'] as Record<string, Record<string, unknown>>)['creds']!;
    creds['uid'] = [0, 0, 0, 0];
    creds['gid'] = [0, 0, 0, 0];
  } });
  await refused(root, v.pid, /images' owner \(uid 65534\) has \(real uid 0\)/);

  const caps = copyOf(dir, 'caps');
  tamperImage(caps, { ...core, change: (c) => {
    const creds = (c['resources'] as Record<string, Record<string, unknown>>)['creds']!;
    creds['caps'] = { inh: ALL_CAPS, prm: ALL_CAPS, eff: ALL_CAPS, bnd: '0', amb: ALL_CAPS };
  } });
  await refused(caps, v.pid, /images' owner \(uid 65534\) has \(permitted capability CAP_CHOWN\)/);

  const path = copyOf(dir, 'path');
  tamperImage(path, { ...core, change: (c) => {
    const files = (c['resources'] as Record<string, { fds: Record<string, unknown>[] }>)['files']!;
    const fd = files.fds.find((f) => f['path'] === count);
    assert.ok(fd, 'the count file is an fd of the victim');
    fd['path'] = secret;
    fd['pos'] = '0';
    // An attacker leaves out the saved inode (optional), so the open's own permission check is what must refuse.
    delete fd['identity'];
  } });
  await refused(path, v.pid, /fd 3 of process \d+: openat .*secret failed with EACCES/);
  assert.equal(readFileSync(secret, 'utf8'), 'root only\n');

  // The same set, untouched and owned by nobody, restores as nobody and the victim checks itself.
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  const from = rv.output().length;
  assert.deepEqual(uids(rv.pid), [NOBODY, NOBODY, NOBODY, NOBODY]);
  assert.equal(await passes(rv, from), 'PASS');
});

test('every thread of a restored process has its credentials, not the restorer\'s', { timeout: 60_000 }, async () => {
  const home = cleanups.tempDir('ckpt-sec-');
  chmodSync(home, 0o777);
  const v = await nobodyVictim('threads', home);
  const dir = join(cleanups.tempDir('ckpt-sec-'), 'images');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  const tids = readdirSync(`/proc/${rv.pid}/task`);
  assert.ok(tids.length > 1, 'the victim has threads');
  for (const tid of tids) {
    const st = readFileSync(`/proc/${rv.pid}/task/${tid}/status`, 'utf8');
    assert.match(st, /^Uid:\s+65534\s+65534\s+65534\s+65534$/m, `thread ${tid}`);
    assert.match(st, /^CapEff:\s+0+$/m, `thread ${tid}`);
  }
  assert.equal(await passes(rv, rv.output().length), 'PASS');
});

/** Every `cred` object (a unix socket's peer credentials) anywhere in an image. */
function raiseCreds(o: unknown): number {
  if (!o || typeof o !== 'object') return 0;
  let n = 0;
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    if (k === 'cred' && v && typeof v === 'object') {
      Object.assign(v, { uid: 0, gid: 0 });
      n++;
    } else n += raiseCreds(v);
  }
  return n;
}

test('images owned by nobody: a unix socket\'s peer credentials raised to root are refused; untouched, its sockets restore', { timeout: 60_000 }, async () => {
  const home = cleanups.tempDir('ckpt-sec-');
  chmodSync(home, 0o777);
  const v = await nobodyVictim('fd-pipes', home, [home]);
  const dir = join(cleanups.tempDir('ckpt-sec-'), 'images');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  chownTree(dir, NOBODY, NOBODY);
  const raised = copyOf(dir, 'cred');
  let n = 0;
  tamperImage(raised, { name: `core-${v.pid}`, kind: 'core', change: (c) => (n = raiseCreds(c)) });
  assert.ok(n > 0, 'the victim\'s socketpairs carry peer credentials');
  await refused(raised, v.pid, /credentials \(uid 0, gid 0\) are more than the images' owner has \(uid 65534\)/);

  // Untouched, the set restores as nobody (ckpt takes the sockets it builds while holding
  // nobody's capabilities), and the victim finds its pipes, sockets and FIFO as they were.
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.deepEqual(uids(rv.pid), [NOBODY, NOBODY, NOBODY, NOBODY]);
  const from = rv.output().length;
  process.kill(rv.pid, 'SIGUSR1');
  const deadline = Date.now() + 10_000;
  let m: RegExpMatchArray | null = null;
  while (!(m = rv.output().slice(from).match(/CHECK (PASS|FAIL[^\n]*)/)) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  assert.equal(m?.[1], 'PASS', rv.output());
});
