/**
 * Lazy restore from a page server (CRIU's `lazy-pages --page-server`): a lazy-mem victim
 * dumped here, its images served by `ckpt page-server --lazy-pages` in network namespace A,
 * restored by `ckpt restore --lazy-pages --page-server` in B into an empty directory: the
 * metadata comes first, every page on fault or by prefetch over the connection. The
 * victim checks all its memory after (a read(2) of the kernel into a missing page,
 * MADV_DONTNEED, mremap, fork, every page). A page server killed before every page is in
 * takes the restored process with it, with the reason in the lazy-pages log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { network, tokenFile, type MigrateNet } from '../helpers/migrate-net.js';

const cleanups = useCleanups();
const root = new URL('../..', import.meta.url).pathname;
const CHECKS = ['kernel-read', 'dontneed', 'mremap', 'fork', 'big-memory'];
const A = '10.77.1.2';
const ckpt = (...args: string[]) => [process.execPath, '--import', 'tsx', join(root, 'src/cli/main.ts'), ...args];

async function dumped(mib: number): Promise<{ dir: string; pid: number; log: string; dirOf: string; pre: string }> {
  const v = startVictim('lazy-mem', { args: [String(mib)] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/^READY/m, 30_000);
  const dir = cleanups.tempDir('ckpt-lps-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  return { dir, pid: v.pid, log: v.log, dirOf: v.dir, pre: v.output() };
}

/** `ckpt page-server --lazy-pages` serving `dir` in A; resolves with its port. */
function serve(net: MigrateNet, args: { dir: string; token: string }): { child: ChildProcess; port: Promise<number>; stderr: () => string; exited: Promise<number | null> } {
  const child = spawn('nsenter', [`--net=/run/netns/${net.ns.a}`, ...ckpt('page-server', '--lazy-pages', '-D', args.dir, '--address', A, '--port', '0', '--auth-token', args.token, '-v3')], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  const port = new Promise<number>((res, rej) => {
    child.stderr!.on('data', (d: string) => {
      err += d;
      const m = /listening on [0-9.]+:(\d+)/.exec(err);
      if (m) res(Number(m[1]));
    });
    child.on('exit', () => rej(new Error(`page server exited: ${err}`)));
  });
  return { child, port, stderr: () => err, exited };
}

/** `ckpt restore --lazy-pages --page-server` in B, detached: the restore's JSON result. */
function restoreFrom(net: MigrateNet, args: { dir: string; port: number; token: string; extra?: string[] }): { pid: number; lazyPages: { serverPid: number; guardPid: number; log: string } } {
  const r = spawnSync('nsenter', [`--net=/run/netns/${net.ns.b}`, ...ckpt('restore', '-D', args.dir, '-d', '--lazy-pages', '--page-server', '--address', A, '--port', String(args.port), '--auth-token', args.token, '--json', ...(args.extra ?? []))], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as ReturnType<typeof restoreFrom>;
}

async function logSays(path: string, pattern: RegExp, withinMs = 30_000): Promise<string> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`no ${pattern} in ${path}:\n${text}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const net = network(cleanups, `lp${process.pid % 10000}`);
const token = tokenFile(cleanups.tempDir('ckpt-lps-token-'));

test('a process restored from a page server in another network namespace gets every page from it, and checks all its memory', { timeout: 120_000 }, async () => {
  const d = await dumped(64);
  const s = serve(net, { dir: d.dir, token });
  const to = join(cleanups.tempDir('ckpt-lps-to-'), 'images');
  const r = restoreFrom(net, { dir: to, port: await s.port, token });
  const rv = wrapPid(r.pid, d.dirOf, d.log);
  cleanups.push(() => rv.kill());
  kill(r.pid, SIG.SIGUSR1);
  await rv.waitFor(/^DONE fails=\d+$/m, 60_000);
  const post = rv.output().slice(d.pre.length);
  assert.doesNotMatch(post, /FAIL/, post);
  for (const c of CHECKS) assert.match(post, new RegExp(`^PASS ${c}$`, 'm'));
  // Every page in (the victim touched them all), the lazy-pages server said so to the page server, which ended.
  assert.equal(await s.exited, 0, s.stderr());
  // The restore's session took the metadata and the pages it fills itself; the lazy-pages server's the rest.
  const served = /done: it has every page \((\d+) bytes served\)/.exec(s.stderr());
  assert.ok(served && Number(served[1]) > 32 * 1024 * 1024, `the pages came over the lazy-pages server's session: ${s.stderr()}`);
  await waitGone(r.lazyPages.serverPid);
  await rv.kill();
});

test('a page server that dies before every page is in takes the restored process with it, with the reason', { timeout: 120_000 }, async () => {
  const d = await dumped(64);
  const s = serve(net, { dir: d.dir, token });
  const to = join(cleanups.tempDir('ckpt-lps-to-'), 'images');
  const r = restoreFrom(net, { dir: to, port: await s.port, token, extra: ['--no-lazy-prefetch'] });
  const rv = wrapPid(r.pid, d.dirOf, d.log);
  cleanups.push(() => rv.kill());
  s.child.kill('SIGKILL');
  await s.exited;
  kill(r.pid, SIG.SIGUSR1);
  await waitGone(r.pid);
  const log = await logSays(r.lazyPages.log, /killed process/);
  assert.match(log, new RegExp(`Cannot serve pages of process ${r.pid}: Cannot (connect to|exchange images with) page server ${A.replace(/\./g, '\\.')}:\\d+: .*killed process ${r.pid}`));
  assert.doesNotMatch(rv.output().slice(d.pre.length), /PASS|FAIL/, 'the process never ran on with pages missing');
  await waitGone(r.lazyPages.serverPid);
  await waitGone(r.lazyPages.guardPid);
});
