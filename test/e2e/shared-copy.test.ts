/**
 * Big page copies (src/resources/memory/copy.ts, split.ts): pages go in units of up to
 * 2 MiB with one process_vm_readv (dump) or process_vm_writev (restore) each, and
 * nothing of ckpt's is left in a process dumped with leaveRunning. (The target used to
 * write part of its own pages; these tests kept the cases that mattered then: another
 * user's process, a file size limit, no free fd.) The victim (test/victims/bench-mem:
 * every word of its area holds a value derived from its index) checks its whole area on
 * SIGUSR1, so a unit copied to the wrong place, twice or not at all shows up as FAIL.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const MiB = 1024 * 1024;
const VICTIM = join(new URL('../victims/bin/', import.meta.url).pathname, 'bench-mem');

async function check(v: Victim): Promise<string> {
  const from = v.output().length;
  kill(v.pid, SIG.SIGUSR1);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = v.output().slice(from).match(/(PASS|FAIL)[^\n]*/);
    if (m) return m[0];
    if (Date.now() > deadline) throw new Error(`pid ${v.pid}: no PASS/FAIL after SIGUSR1; output:\n${v.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function uid(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m);
  return Number(m?.[1]);
}

async function start(prefix: string[], mib: number): Promise<Victim> {
  const v = startVictim(prefix.length ? prefix[0]! : VICTIM, { args: [...prefix.slice(1), ...(prefix.length ? [VICTIM] : []), String(mib)] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/, 60_000);
  return v;
}

test('a 96 MiB process of another user comes back whole, and a leave-running dump leaves nothing in it', { timeout: 120_000 }, async () => {
  const v = await start(['/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'], 96);
  assert.equal(uid(v.pid), 65534, 'the victim runs as nobody');
  // First leaving it running: the fd and scratch memory the target used are gone after.
  const fds = readdirSync(`/proc/${v.pid}/fd`).sort();
  const maps = readFileSync(`/proc/${v.pid}/maps`, 'utf8');
  const first = dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-shared-'), leaveRunning: true });
  assert.equal(first.bytesByTarget, 0, 'ckpt writes every page itself');
  assert.deepEqual(readdirSync(`/proc/${v.pid}/fd`).sort(), fds, 'same fds after a leave-running dump');
  assert.equal(readFileSync(`/proc/${v.pid}/maps`, 'utf8'), maps, 'same memory map after a leave-running dump');
  assert.match(await check(v), /^PASS/);

  const dir = cleanups.tempDir('ckpt-shared-');
  const d = dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  assert.ok(d.bytes >= 96 * MiB);

  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(rv.pid, v.pid);
  assert.equal(uid(rv.pid), 65534, 'restored as nobody');
  assert.match(await check(rv), /^PASS/);
});

/**
 * Dumps v leaving it running and checks that ckpt copied every page itself (`why`),
 * that v runs on with its memory intact and nothing of ckpt's left in it, then
 * restores the images and checks the restored memory and `limit` in its limits.
 */
async function aloneAndBack(v: Victim, opts: { why: string; limit: RegExp }): Promise<void> {
  const fds = readdirSync(`/proc/${v.pid}/fd`).sort();
  const dir = cleanups.tempDir('ckpt-shared-');
  const d = dump(v.pid, { imagesDir: dir, leaveRunning: true });
  const logAtDump = v.output().length;
  assert.equal(d.bytesByTarget, 0, opts.why);
  assert.ok(v.alive(), 'the original runs on');
  assert.deepEqual(readdirSync(`/proc/${v.pid}/fd`).sort(), fds, 'no fd of ckpt left behind');
  assert.match(await check(v), /^PASS/);
  await v.kill();
  // The restored process writes its log from where the original stood at the dump.
  truncateSync(v.log, logAtDump);

  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.match(await check(rv), /^PASS/);
  assert.match(readFileSync(`/proc/${rv.pid}/limits`, 'utf8'), opts.limit, 'its limit is restored');
}

test('a process with a file size limit below its page file gets no SIGXFSZ, and runs on', { timeout: 120_000 }, async () => {
  const v = await start(['/usr/bin/prlimit', '--fsize=1048576', '--'], 64);
  await aloneAndBack(v, { why: 'ckpt copied every page itself', limit: /^Max file size\s+1048576\s/m });
});

test('a process with no free fd is dumped and runs on', { timeout: 120_000 }, async () => {
  // Four fds: 0-2 and one free (the target once had to take the page file and a socket pair).
  const v = await start(['/usr/bin/prlimit', '--nofile=4', '--'], 48);
  await aloneAndBack(v, { why: 'ckpt copied every page', limit: /^Max open files\s+4\s/m });
});
