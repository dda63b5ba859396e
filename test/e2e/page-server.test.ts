/**
 * The page server (`ckpt page-server`, dump/pre-dump --page-server) over 127.0.0.1: the
 * memcheck victim's memory goes to the server, which ends with a complete set that
 * restores (the victim checks its memory); a wrong token is refused with nothing
 * written; a server killed mid-dump fails the dump and the victim runs on unchanged; a
 * pre-dump chain sent round by round restores from the server's directories.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { preDump } from '../../src/dump/predump.js';
import { restore } from '../../src/restore/restore.js';
import { isCkptError } from '../../src/common/errors.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const root = new URL('../..', import.meta.url).pathname;

function tokenFile(dir: string, name = 'token'): string {
  const f = join(dir, name);
  writeFileSync(f, randomBytes(32), { mode: 0o600 });
  chmodSync(f, 0o600);
  return f;
}

interface Server {
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
  stderr: () => string;
}

/** Starts `ckpt page-server` from the sources on 127.0.0.1, any port; resolves once it listens. */
async function startServer(args: { dir: string; token: string; extra?: string[] }): Promise<Server> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'page-server', '-D', args.dir, '--address', '127.0.0.1', '--port', '0', '--auth-token', args.token, ...(args.extra ?? [])], {
    cwd: root, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const port = await new Promise<number>((res, rej) => {
    child.stderr!.on('data', (d: string) => {
      err += d;
      const m = /listening on [0-9.]+:(\d+)/.exec(err);
      if (m) res(Number(m[1]));
    });
    void exited.then((code) => rej(new Error(`page server exited (${code}) before listening: ${err}`)));
  });
  return { child, port, exited, stderr: () => err };
}

async function victim(mib: number): Promise<Victim> {
  const v = startVictim('memcheck', { args: [String(mib)] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/^READY/m, 30_000);
  return v;
}

async function checks(v: Victim, n: number): Promise<void> {
  kill(v.pid, SIG.SIGUSR1);
  const m = await v.waitFor(new RegExp(`CHECK ${n} (PASS|FAIL.*)`));
  assert.equal(m[1], 'PASS', v.output());
}

/** A victim of `mib` MiB, a page server for dst, and where the dump's own directory (src) goes. */
async function started(mib: number): Promise<{ v: Victim; srv: Server; src: string; dst: string; pageServer: { address: string; port: number; authToken: string } }> {
  const v = await victim(mib);
  const tmp = cleanups.tempDir('ckpt-ps-');
  const token = tokenFile(tmp);
  const dst = join(tmp, 'dst');
  const srv = await startServer({ dir: dst, token });
  return { v, srv, src: join(tmp, 'src'), dst, pageServer: { address: '127.0.0.1', port: srv.port, authToken: token } };
}

test('a dump through the page server restores from the server\'s directory, which holds the whole set', async () => {
  const { v, srv, src, dst, pageServer } = await started(64);
  const r = dump(v.pid, { imagesDir: src, pageServer });
  assert.ok(r.pages >= 64 * 256, `${r.pages} pages`);
  assert.equal(await srv.exited, 0, srv.stderr());
  await waitGone(v.pid);
  // The page file is only on the server; the rest is in both places, byte for byte the same set.
  const local = readdirSync(src).sort();
  const remote = readdirSync(dst).sort();
  assert.ok(!local.some((f) => f.startsWith('pages-')), local.join(' '));
  assert.deepEqual(remote.filter((f) => !f.startsWith('pages-')), local);
  assert.equal(statSync(dst).mode & 0o777, 0o700);
  for (const f of remote) assert.equal(statSync(join(dst, f)).mode & 0o777, 0o600, f);
  const back = restore({ imagesDir: dst });
  const rv = wrapPid(back.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  await checks(rv, 1);
});

test('a wrong token is refused before anything is written, and the victim runs on', async () => {
  const v = await victim(8);
  const tmp = cleanups.tempDir('ckpt-ps-');
  const dst = join(tmp, 'dst');
  const srv = await startServer({ dir: dst, token: tokenFile(tmp) });
  const src = join(tmp, 'src');
  assert.throws(
    () => dump(v.pid, { imagesDir: src, pageServer: { address: '127.0.0.1', port: srv.port, authToken: tokenFile(tmp, 'other') } }),
    (e: unknown) => isCkptError(e, 'PERMISSION') && /refused our token/.test((e as Error).message),
  );
  assert.ok(!existsSync(dst), 'the server wrote nothing');
  assert.ok(!existsSync(src), 'the dump left nothing');
  // The server refuses the stranger and waits on for a client that knows the token.
  assert.equal(srv.child.exitCode, null);
  await checks(v, 1);
});

test('a page server killed mid-dump fails the dump; the victim runs on unchanged', async () => {
  const { v, srv, src, dst, pageServer } = await started(64);
  let killed = false;
  assert.throws(
    () => dump(v.pid, {
      imagesDir: src, pageServer,
      // Called between copy units while the tree is frozen: the server dies with the dump half sent.
      onProgress: (p) => {
        if (!killed && p.bytes >= 8 << 20) {
          killed = true;
          srv.child.kill('SIGKILL');
        }
      },
    }),
    (e: unknown) => isCkptError(e, 'NETWORK') && /page server 127\.0\.0\.1/.test((e as Error).message),
  );
  assert.ok(killed);
  assert.ok(!existsSync(src), 'the dump left nothing');
  assert.ok(!existsSync(join(dst, 'inventory.img')), 'no complete set on the server');
  await checks(v, 1);
});

test('a pre-dump chain sent round by round to a server that keeps going restores from the server\'s directories', async () => {
  const v = await victim(32);
  const tmp = cleanups.tempDir('ckpt-ps-');
  const token = tokenFile(tmp);
  const dst = join(tmp, 'dst');
  const srv = await startServer({ dir: dst, token, extra: ['--keep-going'] });
  const to = (set: string) => ({ address: '127.0.0.1', port: srv.port, authToken: token, set });
  const p = preDump(v.pid, { imagesDir: join(tmp, 'src/1'), pageServer: to('1') });
  assert.ok(p.pages >= 32 * 256);
  await checks(v, 1); // it ran on, and writes nothing to its pattern: the next round is small
  const r = dump(v.pid, { imagesDir: join(tmp, 'src/2'), parent: '../1', pageServer: to('2') });
  assert.ok(r.inParent! >= 32 * 256, `${r.inParent} pages left in the parent`);
  assert.ok(r.pages < 1000, `${r.pages} pages in the last round`);
  assert.equal(srv.child.exitCode, null, 'it keeps going');
  await waitGone(v.pid);
  // Each set in the directory its dump named: the chain's relative parent name holds there.
  const back = restore({ imagesDir: join(dst, '2') });
  const rv = wrapPid(back.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  await checks(rv, 2);
});
