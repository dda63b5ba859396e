/**
 * Process groups whose leader is not in the dump (lostgroup.c): restore could only put
 * their members into another group, so the dump refuses, naming the process and the
 * group, and leaves the tree running as it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { killAll, startVictim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
cleanups.push(() => killAll('lostgroup'));

const fields = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { state: f[0], pgid: Number(f[2]) };
};

for (const mode of ['live', 'zombie']) {
  test(`a ${mode} process in a group whose leader exited is refused at dump, and keeps its group`, async () => {
    const v = startVictim('lostgroup', { args: [mode] });
    cleanups.push(() => v.cleanup());
    const m = await v.waitFor(/READY pid=\d+ z=(\d+) pgid=(\d+)/);
    const z = Number(m[1]);
    const group = Number(m[2]);
    assert.deepEqual(fields(z), { state: mode === 'zombie' ? 'Z' : 'S', pgid: group });
    const dir = cleanups.tempDir('ckpt-lostgroup-');
    const what = mode === 'zombie' ? 'zombie' : 'process';
    assert.throws(() => dump(v.pid, { imagesDir: dir }), {
      code: 'UNSUPPORTED',
      message: `Cannot dump ${what} ${z}: its process group ${group} has no leader in the dump, so it cannot be made again`,
    });
    assert.ok(v.alive(), 'the tree runs on');
    assert.equal(fields(z).pgid, group);
  });
}
