/**
 * A killed restore leaves nothing (issue 9): `ckpt restore -d` (the installed CLI)
 * of a 64 MiB victim is killed with SIGKILL, SIGINT and SIGTERM at random moments.
 * Afterwards the victim is either gone with everything else the restore built (the
 * blank too), or fully restored, untraced, and passes its own check; ckpt's stdout
 * pipe is closed (a `$(ckpt restore …)` returns); and a retry restores it. A few tries
 * per signal; many with CKPT_TEST_LONG=1.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { buildCli } from '../helpers/bundle.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import {
  assertChecks, assertDiedOf, assertNoBlankLeft, killAndWait, markNodeChild, runCli, settle, sleep, tracerOf, tries, within,
} from '../helpers/interrupt.js';

const root = new URL('../..', import.meta.url).pathname;
const cleanups = useCleanups();
let bin = '';
let images = '';
let victim: Victim;
/** How long an uninterrupted restore takes from the start of the CLI, ms. */
let span = 0;

/** Restores to the end and checks the victim: the images and the PID are usable again. */
async function restoreOnce(): Promise<number> {
  const t0 = Date.now();
  const run = runCli(bin, ['restore', '-d', '-D', images]);
  const ex = await within(run.exited, 120_000, 'ckpt restore ended');
  const ms = Date.now() - t0;
  assert.equal(ex.code, 0, `restore: ${run.stderr()}`);
  await within(run.stdoutClosed, 10_000, 'stdout of a finished restore closed');
  assert.equal(await settle(victim.pid), 'alive');
  assert.equal(tracerOf(victim.pid), 0);
  await assertChecks(victim);
  await killAndWait(victim.pid);
  return ms;
}

before(async () => {
  const top = cleanups.tempDir('ckpt-int-restore-');
  bin = buildCli(cleanups);
  const v = startVictim('memcheck', { args: ['64'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/^READY/m, 30_000);
  images = join(top, 'images');
  const d = runCli(bin, ['dump', '-t', String(v.pid), '-D', images]);
  assert.equal((await d.exited).code, 0, d.stderr());
  await waitGone(v.pid);
  victim = wrapPid(v.pid, v.dir, v.log);
  span = await restoreOnce();
});

test('a restorer killed right after starting the blank process leaves neither it nor its stdout behind', async () => {
  // The moment between starting the blank and seizing it, made certain: a Node process
  // that starts one and then dies of SIGKILL at once.
  const script = `import { startBlank } from ${JSON.stringify(join(root, 'src/restore/blank.ts'))};
    process.stdout.write(startBlank().pid + '\\n', () => process.kill(process.pid, 'SIGKILL'));`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  markNodeChild(child.pid!);
  let out = '';
  const closed = new Promise((r) => child.stdout.on('close', r));
  const started = new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve();
    });
    child.on('exit', () => resolve());
  });
  await within(started, 60_000, 'the restorer started a blank'); // slowly on a busy machine
  await within(closed, 10_000, 'stdout of the killed restorer closed');
  const blank = Number(out.trim());
  assert.ok(blank > 0, `the blank's pid: ${out}`);
  assert.equal(await settle(blank), 'gone', 'the blank died with its parent');
  await assertNoBlankLeft();
});

for (const sig of ['SIGKILL', 'SIGINT', 'SIGTERM'] as const) {
  test(`restore killed by ${sig} at random moments leaves nothing, and a retry works`, { timeout: 300_000 }, async (t) => {
    const outcomes = { gone: 0, alive: 0 };
    for (let i = 0; i < tries(2, 17); i++) {
      const run = runCli(bin, ['restore', '-d', '-D', images]);
      await sleep(Math.random() * span);
      if (!run.done()) process.kill(run.pid, sig);
      const ex = await within(run.exited, 60_000, `ckpt restore ended after ${sig}`);
      if (ex.code !== 0) assertDiedOf(ex, sig, run.stderr());
      await within(run.stdoutClosed, 10_000, `stdout of a restore killed by ${sig} closed`);
      const state = await settle(victim.pid);
      outcomes[state]++;
      if (ex.code === 0) assert.equal(state, 'alive', 'a restore that exited 0 left its process running');
      if (state === 'alive') {
        // It finished before the signal: a whole restore, let go.
        assert.equal(tracerOf(victim.pid), 0);
        await assertChecks(victim);
        await killAndWait(victim.pid);
      }
      await assertNoBlankLeft();
      await restoreOnce();
    }
    t.diagnostic(`${sig}: ${outcomes.gone} rolled back or killed, ${outcomes.alive} finished first`);
  });
}
