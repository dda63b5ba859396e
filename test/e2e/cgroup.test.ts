/**
 * A process in another cgroup than ckpt's goes back into it at restore (a service
 * restored from a login shell must not land in, and die with, the shell's session
 * scope); a cgroup missing at restore fails it naming the cgroup and leaves nothing;
 * `manageCgroups: 'ignore'` (CRIU's --manage-cgroups=ignore) leaves it in ckpt's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync, existsSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { readMountinfo } from '../../src/proc/index.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const v2 = readMountinfo(process.pid).find((m) => m.fsType === 'cgroup2' && m.root === '/')?.mountPoint;
const cgroupOf = (pid: number) => /^0::(.*)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, 'utf8'))?.[1];

/** A counter moved into a new cgroup under the v2 mount, dumped and killed. */
async function dumpedInCgroup(name: string) {
  const dir = `${v2}/${name}`;
  mkdirSync(dir);
  cleanups.push(() => {
    if (existsSync(dir)) rmdirSync(dir);
  });
  const v = startVictim('counter');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/TICK/);
  writeFileSync(`${dir}/cgroup.procs`, String(v.pid));
  assert.equal(cgroupOf(v.pid), `/${name}`);
  const images = cleanups.tempDir('ckpt-cgroup-');
  dump(v.pid, { imagesDir: images });
  await waitGone(v.pid);
  return { v, dir, images };
}

test('a process goes back into its cgroup; a missing cgroup fails the restore; ignore leaves it in ckpt\'s', async (t) => {
  if (!v2) return t.skip('no cgroup2 mount');
  const name = `ckpt-test-${process.pid}`;
  const { v, dir, images } = await dumpedInCgroup(name);

  rmdirSync(dir);
  assert.throws(() => restore({ imagesDir: images }), { code: 'FILE_CHANGED', message: new RegExp(`its cgroup /${name} \\(0:\\) does not exist here`) });
  await waitGone(v.pid); // nothing left running (a killed blank may need reaping first)

  mkdirSync(dir);
  restore({ imagesDir: images });
  assert.equal(cgroupOf(v.pid), `/${name}`, 'back in its cgroup');
  const w = wrapPid(v.pid, v.dir, v.log);
  const ticks = (w.output().match(/^TICK/gm) ?? []).length;
  await w.waitFor(new RegExp(`(?:TICK[^\\n]*mem=PASS\\n[^]*){${ticks + 1}}`));
  process.kill(v.pid, 'SIGKILL');
  await waitGone(v.pid);

  restore({ imagesDir: images, manageCgroups: 'ignore' });
  assert.equal(cgroupOf(v.pid), cgroupOf(process.pid), 'left in ckpt\'s cgroup');
  process.kill(v.pid, 'SIGKILL');
  await waitGone(v.pid);
});
