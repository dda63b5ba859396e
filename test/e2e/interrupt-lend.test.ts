/**
 * An fd lent to a target for a shared page copy (the page file) must not outlive a
 * ckpt that dies: the target closes it by itself on its way back through its recovery
 * frame (RemoteTask.closeIfLost). Made certain here instead of random as in
 * interrupt-dump.test.ts: a Node process seizes the victim, lends it an fd, and dies of
 * SIGKILL, either between two injected calls or while one runs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim } from '../helpers/victim.js';
import { assertChecks, markNodeChild, settle, sleep, tracerOf, within } from '../helpers/interrupt.js';

const cleanups = useCleanups();
const root = new URL('../..', import.meta.url).pathname;
const fds = (pid: number) => readdirSync(`/proc/${pid}/fd`).sort().join(' ');

for (const when of ['between calls', 'during a call'] as const) {
  test(`ckpt killed ${when} with an fd lent to the target: the target closes it and runs on`, async () => {
    const v = startVictim('memcheck', { args: ['16'] });
    cleanups.push(() => v.cleanup());
    await v.waitFor(/^READY/m, 30_000);
    const before = fds(v.pid);
    const script = `
      import { openSync, readdirSync } from 'node:fs';
      import { seizeProcess, RemoteTask, findSyscallSite } from ${JSON.stringify(join(root, 'src/infect/index.ts'))};
      import { passLocalFd } from ${JSON.stringify(join(root, 'src/resources/transfer.ts'))};
      import { lowestFreeFds } from ${JSON.stringify(join(root, 'src/proc/index.ts'))};
      const pid = ${v.pid};
      seizeProcess(pid);
      const remote = new RemoteTask(pid, { site: findSyscallSite(pid), recoverable: true });
      // The socket pair's two ends and the fd it carries: the frozen target's lowest free numbers.
      if (!remote.closeIfLost(lowestFreeFds(pid, 3))) throw new Error('cannot arm');
      const fd = passLocalFd(remote, { pid, localFd: openSync('/dev/null', 'r') });
      const held = readdirSync('/proc/' + pid + '/fd').map(Number).includes(fd);
      if (${when === 'during a call'}) {
        const ts = remote.scratch(16);
        remote.write(ts, Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa3, 0xe1, 0x11, 0, 0, 0, 0])); // 0.3 s
        remote.begin(35 /* nanosleep */, [ts, 0], 'nanosleep');
      }
      process.stdout.write('LENT ' + fd + ' held=' + held + '\\n', () => process.kill(process.pid, 'SIGKILL'));`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
    markNodeChild(child.pid!);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await within(new Promise((r) => child.on('exit', r)), 60_000, 'the lender died');
    assert.match(out, /^LENT \d+ held=true$/m, `the fd was lent: ${out}`);
    assert.equal(await settle(v.pid), 'alive');
    assert.equal(tracerOf(v.pid), 0);
    // The call in progress (a 0.3 s sleep) ends first; then the thread closes the fd.
    const deadline = Date.now() + 10_000;
    while (fds(v.pid) !== before && Date.now() < deadline) await sleep(20);
    assert.equal(fds(v.pid), before, 'the lent fd is closed again');
    await assertChecks(v);
  });
}
