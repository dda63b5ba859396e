/**
 * Lazy restore (restore({ lazyPages })): the victim (test/victims/lazy-mem.c) runs before
 * its memory is in; its first touches fault to the lazy-pages server. It checks a read(2)
 * of the kernel into a missing page, MADV_DONTNEED, mremap and fork of missing pages, and
 * all its memory. A server killed before every page is in takes the process with it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, truncateSync } from 'node:fs';
import { join, relative } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { preDump } from '../../src/dump/predump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const CHECKS = ['kernel-read', 'dontneed', 'mremap', 'fork', 'big-memory'];
const root = new URL('../..', import.meta.url).pathname;

/** A lazy-mem victim dumped (with `parent`: a pre-dump first, and the dump against it). */
async function dumped(mib: number, opts: { args?: string[]; chain?: boolean } = {}): Promise<{ dir: string; pid: number; log: string; dirOf: string; pre: string }> {
  const v = startVictim('lazy-mem', { args: [String(mib), ...(opts.args ?? [])] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/^READY/m, 30_000);
  const dir = cleanups.tempDir('ckpt-lazy-');
  if (opts.chain) {
    const parent = cleanups.tempDir('ckpt-lazy-parent-');
    preDump(v.pid, { imagesDir: parent });
    dump(v.pid, { imagesDir: dir, parent: relative(dir, parent) });
  } else {
    dump(v.pid, { imagesDir: dir });
  }
  await waitGone(v.pid);
  return { dir, pid: v.pid, log: v.log, dirOf: v.dir, pre: v.output() };
}

/**
 * A 64 MiB victim restored lazily without prefetch; `breakIt` is done before its first
 * touch of memory (SIGUSR1), which must then kill it: the log's last words are returned.
 */
async function diesAtFirstTouch(breakIt: (r: { pid: number; serverPid: number; dir: string }) => void, logPattern: RegExp): Promise<{ log: string; pid: number; serverPid: number }> {
  const d = await dumped(64);
  const r = restore({ imagesDir: d.dir, lazyPages: true, lazyPrefetch: false });
  const rv = wrapPid(r.pid, d.dirOf, d.log);
  cleanups.push(() => rv.kill());
  assert.ok(r.lazyPages);
  breakIt({ pid: r.pid, serverPid: r.lazyPages.serverPid, dir: d.dir });
  kill(r.pid, SIG.SIGUSR1);
  await waitGone(r.pid);
  const log = await logSays(r.lazyPages.log, logPattern);
  assert.doesNotMatch(rv.output().slice(d.pre.length), /PASS|FAIL/, 'the process never ran on with pages missing');
  await waitGone(r.lazyPages.serverPid);
  await waitGone(r.lazyPages.guardPid);
  return { log, pid: r.pid, serverPid: r.lazyPages.serverPid };
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

test('a lazily restored process runs before its pages are in and checks all its memory', { timeout: 120_000 }, async () => {
  const d = await dumped(128);
  // Without prefetch every first touch faults, whatever the machine's speed.
  const r = restore({ imagesDir: d.dir, lazyPages: true, lazyPrefetch: false });
  const rv = wrapPid(r.pid, d.dirOf, d.log);
  cleanups.push(() => rv.kill());
  assert.ok(r.lazyPages, 'the restore says who serves the pages');
  kill(r.pid, SIG.SIGUSR1);
  await rv.waitFor(/^DONE fails=\d+$/m, 60_000);
  const post = rv.output().slice(d.pre.length);
  assert.doesNotMatch(post, /FAIL/, post);
  for (const c of CHECKS) assert.match(post, new RegExp(`^PASS ${c}$`, 'm'));
  assert.ok(rv.alive());
  // Once the process is gone, the server and its guard end.
  await rv.kill();
  await waitGone(r.lazyPages.serverPid);
  await waitGone(r.lazyPages.guardPid);
});

test('a chain of incremental images is restored lazily: the server copies the pages the parent images hold', { timeout: 120_000 }, async () => {
  const d = await dumped(64, { chain: true });
  const r = restore({ imagesDir: d.dir, lazyPages: true });
  const rv = wrapPid(r.pid, d.dirOf, d.log);
  cleanups.push(() => rv.kill());
  assert.ok(r.lazyPages);
  kill(r.pid, SIG.SIGUSR1);
  await rv.waitFor(/^DONE fails=\d+$/m, 60_000);
  const post = rv.output().slice(d.pre.length);
  assert.doesNotMatch(post, /FAIL/, post);
  for (const c of CHECKS) assert.match(post, new RegExp(`^PASS ${c}$`, 'm'));
  // Nothing was written between the pre-dump and the dump: the 64 MiB came from the parent, lazily.
  const log = await logSays(r.lazyPages.log, new RegExp(`process ${r.pid}: every page in`));
  const mib = Number(new RegExp(`process ${r.pid}: every page in, ([\\d.]+) MiB`).exec(log)![1]);
  assert.ok(mib >= 60, `the server copied ${mib} MiB`);
});

for (const mode of ['fork-wait', 'fork-orphan']) {
  const what = mode === 'fork-wait' ? 'a process forked after a lazy restore dies with it' : 'a process forked after a lazy restore and left by its parent dies too';
  test(`${what} when the server dies, and never reads zeros`, { timeout: 120_000 }, async () => {
    const d = await dumped(64, { args: [mode] });
    const r = restore({ imagesDir: d.dir, lazyPages: true, lazyPrefetch: false });
    const rv = wrapPid(r.pid, d.dirOf, d.log);
    cleanups.push(() => rv.kill());
    assert.ok(r.lazyPages);
    kill(r.pid, SIG.SIGUSR1);
    const child = Number((await rv.waitFor(/^CHILD pid=(\d+)$/m, 30_000))[1]);
    cleanups.push(() => {
      try {
        kill(child, SIG.SIGKILL);
      } catch {
        // gone
      }
    });
    // The server learns the pid once the fork is done (the fork event does not say it),
    // unless the parent exited first (fork-orphan may win that race): the guard then
    // kills the child at its first fault, by the thread id the fault carries.
    const named = await logSays(r.lazyPages.log, new RegExp(`forked process ${child}$`, 'm'), 5000).then(() => true, () => false);
    kill(r.lazyPages.serverPid, SIG.SIGKILL);
    await logSays(r.lazyPages.log, /ended before every page was in: killed .*/);
    try {
      // Were it alive and unwatched, it would now read its parent's missing pages: zeros, or wait for ever.
      kill(child, SIG.SIGUSR2);
    } catch {
      // killed, as it must be
    }
    await waitGone(child);
    await waitGone(r.pid);
    await waitGone(r.lazyPages.guardPid);
    const log = readFileSync(r.lazyPages.log, 'utf8');
    if (named || mode === 'fork-wait') assert.match(log, new RegExp(`killed processes [\\d, ]*\\b${child}\\b`));
    else assert.match(log, new RegExp(`killed (processes [\\d, ]*\\b|process )${child}\\b`));
    assert.doesNotMatch(rv.output().slice(d.pre.length), /child-memory/);
  });
}

test('a lazy-pages server killed before every page is in takes the process with it', { timeout: 120_000 }, async () => {
  // Touching its memory then waits on the guard's copy of the userfaultfd, never reads zeros.
  const { log, pid, serverPid } = await diesAtFirstTouch((r) => kill(r.serverPid, SIG.SIGKILL), /ended before every page was in/);
  assert.match(log, new RegExp(`lazy-pages server \\(pid ${serverPid}\\) ended before every page was in: killed process ${pid}`));
});

test('a lazy-pages server that never comes up: the restore fails and leaves no process behind', { timeout: 120_000 }, async () => {
  const d = await dumped(16);
  let pid = 0;
  assert.throws(
    () => restore({ imagesDir: d.dir, lazyPages: true, lazyPagesCommand: ['/bin/false'], onEvent: (e) => void (e.phase === 'memory' && (pid = e.pid)) }),
    // Seen when ckpt queues the first userfaultfd (the restore undoes itself) or at the let-go (ckpt kills the process).
    (e: Error & { code?: string }) => e.code === 'SYSCALL' && /Cannot restore lazily: the lazy-pages (guard|server) \(pid \d+\) ended before it held every userfaultfd/.test(e.message),
  );
  assert.ok(pid > 0);
  await waitGone(pid);
});

test('a page file that cannot be read any more kills the process at its first fault, saying why', { timeout: 120_000 }, async () => {
  const { log, pid } = await diesAtFirstTouch((r) => truncateSync(join(r.dir, `pages-${r.pid}.img`), 8192), /killed process/);
  assert.match(log, new RegExp(`pages-${pid}\\.img.*truncated.*: killed process ${pid}`));
});

test('ckpt restore -d --lazy-pages (the built CLI) returns while its lazy-pages server runs on', { timeout: 120_000 }, async () => {
  const d = await dumped(64);
  const r = spawnSync(process.execPath, [join(root, 'bin/ckpt.js'), 'restore', '-D', d.dir, '-d', '--lazy-pages', '--pidfile', join(d.dir, 'pid')], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const pid = Number(readFileSync(join(d.dir, 'pid'), 'utf8'));
  const rv = wrapPid(pid, d.dirOf, d.log);
  cleanups.push(() => rv.kill());
  kill(pid, SIG.SIGUSR1);
  await rv.waitFor(/^DONE fails=\d+$/m, 60_000);
  const post = rv.output().slice(d.pre.length);
  assert.doesNotMatch(post, /FAIL/, post);
  for (const c of CHECKS) assert.match(post, new RegExp(`^PASS ${c}$`, 'm'));
  await logSays(join(d.dir, 'lazy-pages.log'), new RegExp(`process ${pid}: every page in`));
});
