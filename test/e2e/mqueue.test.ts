/**
 * POSIX message queues through the real engine (victim mqueue.c): a named queue with
 * messages of two priorities opened twice, an unlinked queue registered for
 * mq_notify(SIGEV_SIGNAL) and an unlinked queue a thread is blocked receiving on. The
 * victim checks them itself on SIGUSR1 after a restore into a namespace where the named
 * queue is gone, after a restore that finds it still there (unchanged: it is kept),
 * and after a leave-running dump (every message and the registration put back).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { isCkptError } from '../../src/common/errors.js';
import { kill, mqUnlink, SIG } from '../../src/sys/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { killAll, startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';

const cleanups = useCleanups();
cleanups.push(() => killAll('mqueue'));
const CHECKS = ['mq-attr', 'mq-mode', 'mq-messages', 'mq-nonblock', 'mq-same-queue', 'mq-name', 'mq-unlinked', 'mq-notify', 'mq-blocked-receive'];

async function start(args: string[] = []): Promise<{ v: Victim; name: string }> {
  const v = startVictim('mqueue', { args });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ name=\/(\S+)/);
  const name = m[1]!;
  cleanups.push(() => {
    try {
      mqUnlink(name);
    } catch {
      // the victim removed it
    }
  });
  return { v, name };
}

async function assertChecks(v: Victim, more: string[] = []): Promise<void> {
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/^DONE$/m);
  const out = v.output();
  assert.doesNotMatch(out, /^FAIL/m, out);
  for (const c of [...CHECKS, ...more]) assert.match(out, new RegExp(`^PASS ${c}$`, 'm'), `check ${c}:\n${out}`);
}

async function dumpKillRestore(opts: { unlink: boolean; fork?: boolean }): Promise<void> {
  const { v, name } = await start(opts.fork ? ['fork'] : []);
  const dir = cleanups.tempDir('ckpt-mq-img-');
  const d = dump(v.pid, { imagesDir: dir });
  const logAtDump = statSync(v.log).size;
  for (const pid of d.pids) await waitGone(pid);
  truncateSync(v.log, logAtDump);
  if (opts.unlink) mqUnlink(name);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(rv.pid, v.pid);
  assert.deepEqual(r.warnings, []);
  await assertChecks(rv, opts.fork ? ['mq-tree'] : []);
}

test('message queues are restored with their messages, attributes and notification', async () => {
  await dumpKillRestore({ unlink: true });
});

test('processes of a tree sharing queues (inherited descriptions, a second open) share one queue again', async () => {
  await dumpKillRestore({ unlink: true, fork: true });
});

test('a named queue that outlived the dumped process is kept when it is unchanged', async () => {
  await dumpKillRestore({ unlink: false });
});

test('a leave-running dump puts every message and the notification back', async () => {
  const { v } = await start();
  dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-mq-img-'), leaveRunning: true });
  await assertChecks(v);
});

test('mq_notify(SIGEV_THREAD) is refused, naming the fd', async () => {
  const { v } = await start(['thread']);
  assert.throws(
    () => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-mq-img-') }),
    (e: unknown) => isCkptError(e, 'UNSUPPORTED') && /fd \d+ of process \d+: .*SIGEV_THREAD/.test(e.message),
  );
  assert.ok(v.alive());
});
