/**
 * Ctrl-C and SIGTERM during a dump (issue 9; SIGKILL is interrupt-dump.test.ts):
 * `ckpt dump` (the installed CLI) of a 256 MiB victim, with and without -R, gets
 * SIGINT or SIGTERM at a random moment of the dump. ckpt then ends by that signal (exit 130/143 to a shell) and either rolled
 * back — no image set left, the victim runs on untraced and passes its own check — or,
 * if the signal came after the images were committed, finished the dump: a complete
 * image set, the victim killed (restored here and checked) or, with -R, running on.
 * Never half of each. A few tries per case; many with CKPT_TEST_LONG=1.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildCli } from '../helpers/bundle.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import {
  assertChecks, assertDiedOf, killAndWait, runCli, settle, sleep, tracerOf, tries, within,
} from '../helpers/interrupt.js';

const cleanups = useCleanups();
let top = '';
let bin = '';
let victim: Victim;
/** How long a dump runs from the moment its image directory exists until it commits the images, ms. */
let span = 0;
let runs = 0;

/** Starts a dump and returns once it has begun (its image directory exists). */
async function startDump(dir: string, leaveRunning: boolean) {
  const run = runCli(bin, ['dump', '-t', String(victim.pid), '-D', dir, ...(leaveRunning ? ['-R'] : [])]);
  while (!existsSync(dir) && !run.done()) await sleep(1);
  return { run, started: Date.now() };
}

before(async () => {
  top = cleanups.tempDir('ckpt-int-dump-');
  bin = buildCli(cleanups);
  const v = startVictim('memcheck', { args: ['256'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/^READY/m, 60_000);
  victim = v;
  const dir = join(top, 'calibrate');
  const { run, started } = await startDump(dir, true);
  while (!existsSync(join(dir, 'inventory.img')) && !run.done()) await sleep(1);
  span = Date.now() - started;
  assert.equal((await run.exited).code, 0, run.stderr());
  rmSync(dir, { recursive: true, force: true });
  await assertChecks(victim);
});

/** A dump that finished before the signal: the set is complete; the victim is killed (then restored from it) or runs on. */
async function finished(dir: string, leaveRunning: boolean): Promise<void> {
  if (!leaveRunning) {
    await waitGone(victim.pid);
    const r = runCli(bin, ['restore', '-d', '-D', dir]);
    assert.equal((await r.exited).code, 0, r.stderr());
    victim = wrapPid(victim.pid, victim.dir, victim.log);
  }
  assert.equal(await settle(victim.pid), 'alive');
  await assertChecks(victim);
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  for (const leaveRunning of [false, true]) {
    test(`${sig} during a dump${leaveRunning ? ' -R' : ''} of 256 MiB: rolled back or finished, never half`, { timeout: 600_000 }, async (t) => {
      const outcomes = { rolledBack: 0, finished: 0 };
      for (let i = 0; i < tries(2, 13); i++) {
        const dir = join(top, `images-${++runs}`);
        const { run } = await startDump(dir, leaveRunning);
        // The first try in the middle of the page copy, the others anywhere before the commit.
        if (i === 0) while (!existsSync(join(dir, `pages-${victim.pid}.img`)) && !run.done()) await sleep(1);
        else await sleep(Math.random() * span);
        if (!run.done()) process.kill(run.pid, sig);
        const ex = await within(run.exited, 120_000, `ckpt dump ended after ${sig}`);
        await within(run.stdoutClosed, 10_000, 'stdout of ckpt closed');
        const complete = existsSync(join(dir, 'inventory.img'));
        if (ex.code === 0) assert.ok(complete, 'a dump that exited 0 left a complete image set');
        else assertDiedOf(ex, sig, run.stderr());
        if (complete) {
          outcomes.finished++;
          await finished(dir, leaveRunning);
        } else {
          outcomes.rolledBack++;
          assert.match(run.stderr(), new RegExp(`^ckpt: Cannot dump process ${victim.pid}: interrupted by ${sig}\n$`), 'one line says why');
          assert.ok(!existsSync(dir) || readdirSync(dir).length === 0, `no image files left: ${existsSync(dir) ? readdirSync(dir).join(' ') : ''}`);
          assert.equal(await settle(victim.pid), 'alive', 'the victim runs on');
          assert.equal(tracerOf(victim.pid), 0, 'untraced');
          await assertChecks(victim);
        }
        rmSync(dir, { recursive: true, force: true });
      }
      t.diagnostic(`${sig}${leaveRunning ? ' -R' : ''}: ${outcomes.rolledBack} rolled back, ${outcomes.finished} finished first`);
    });
  }
}

test('the victim is killed at the end', async () => {
  await killAndWait(victim.pid);
});
