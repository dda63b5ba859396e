/**
 * The mlockall probe page a dump maps in every process (memory/dump.ts readAreas) must
 * not outlive a ckpt that dies while it is mapped: the target unmaps it by itself on
 * its way back through its recovery frame (RemoteTask.runIfLost). Made certain here: a
 * Node process seizes the victim and dies of SIGKILL while the probe is mapped, as a
 * dump would at its smaps read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim } from '../helpers/victim.js';
import { assertChecks, markNodeChild, settle, sleep, tracerOf, within } from '../helpers/interrupt.js';

const cleanups = useCleanups();
const root = new URL('../..', import.meta.url).pathname;
const maps = (pid: number) => readFileSync(`/proc/${pid}/maps`, 'utf8');

test('ckpt killed while the mlockall probe page is mapped: the target unmaps it and runs on', async () => {
  const v = startVictim('memcheck', { args: ['16'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/^READY/m, 30_000);
  const before = maps(v.pid);
  const script = `
    import { readFileSync, writeSync } from 'node:fs';
    import { seizeProcess, RemoteTask, findSyscallSite } from ${JSON.stringify(join(root, 'src/infect/index.ts'))};
    import { withProbePage } from ${JSON.stringify(join(root, 'src/resources/memory/dump.ts'))};
    const pid = ${v.pid};
    seizeProcess(pid);
    const remote = new RemoteTask(pid, { site: findSyscallSite(pid), recoverable: true });
    withProbePage(remote, { pid }, (at) => {
      const mapped = readFileSync('/proc/' + pid + '/maps', 'utf8').includes(at.toString(16) + '-');
      writeSync(1, 'PROBE ' + at.toString(16) + ' mapped=' + mapped + '\\n');
      // Dies here, as a dump killed during its smaps read.
      process.kill(process.pid, 'SIGKILL');
    });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  markNodeChild(child.pid!);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await within(new Promise((r) => child.on('exit', r)), 60_000, 'the prober died');
  assert.match(out, /^PROBE [0-9a-f]+ mapped=true$/m, `the probe was mapped: ${out}`);
  assert.equal(await settle(v.pid), 'alive');
  assert.equal(tracerOf(v.pid), 0);
  const deadline = Date.now() + 10_000;
  while (maps(v.pid) !== before && Date.now() < deadline) await sleep(20);
  assert.equal(maps(v.pid), before, 'the probe page is unmapped again');
  await assertChecks(v);
});
