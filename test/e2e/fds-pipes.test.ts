/**
 * Pipes, unix socketpairs and a FIFO with data in flight, through the real engine:
 * the dump reads every buffer without consuming it (the original still passes its
 * own check after a leaveRunning dump), and the restored process finds the same
 * bytes, message boundaries, pipe capacity and flags (fd-pipes.c checks itself).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const tempDir = (prefix: string) => cleanups.tempDir(prefix);

/** Signals the victim to check itself and waits for check number `n` (1-based) to be reported. */
async function check(v: Victim, n: number): Promise<string> {
  kill(v.pid, SIG.SIGUSR1);
  const m = await v.waitFor(new RegExp(`(CHECK [^\\n]*\\n[^]*?){${n}}`));
  const lines = [...v.output().matchAll(/^CHECK .*$/gm)].map((x) => x[0]);
  assert.ok(lines.length >= n, m[0]);
  await v.waitFor(new RegExp(`(REFILLED\\n[^]*?){${n}}`));
  return lines[n - 1]!;
}

test('pipes, socketpairs and a FIFO keep their data, boundaries, capacity and flags', async () => {
  const fifoDir = tempDir('ckpt-fifo-');
  const v = startVictim('fd-pipes', { args: [fifoDir] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = tempDir('ckpt-fds-img-');

  const r = dump(v.pid, { imagesDir: dir, leaveRunning: true });
  const logAtDump = statSync(v.log).size;
  assert.deepEqual(r.warnings, [], 'no warnings');
  // The dump peeked: the original still has every byte.
  assert.equal(await check(v, 1), 'CHECK PASS');
  await v.kill();
  await waitGone(v.pid);
  // The restored stdout writes at its dump-time offset: drop what the original wrote since.
  truncateSync(v.log, logAtDump);

  const res = restore({ imagesDir: dir });
  const rv = wrapPid(res.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(rv.pid, v.pid);
  assert.deepEqual(res.warnings, []);
  assert.equal(await check(rv, 1), 'CHECK PASS');
  // And again: the refilled buffers behave like the originals.
  assert.equal(await check(rv, 2), 'CHECK PASS');
});
