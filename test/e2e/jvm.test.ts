/**
 * A real JVM (HotSpot: a dozen threads, a garbage-collected heap, JIT code, PROT_NONE
 * guard and polling pages written through /proc/self/mem) through dump and restore.
 * Skipped where there is no JDK.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const javac = ['/usr/bin/javac', '/usr/lib/jvm/default-java/bin/javac'].find(existsSync);

test('a JVM program (GC heap, JIT, a dozen threads) counts on after dump and restore', { skip: javac ? false : 'no JDK (javac) on this machine' }, async () => {
  const classes = cleanups.tempDir('ckpt-jvm-');
  const src = new URL('../victims/JavaCounter.java', import.meta.url).pathname;
  const c = spawnSync(javac!, ['-d', classes, src], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  const java = join(javac!, '..', 'java');
  // A small heap and the serial collector: a quicker start, fewer threads to wait for.
  const v = startVictim(java, { args: ['-Xmx64m', '-XX:+UseSerialGC', '-cp', classes, 'JavaCounter'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/COUNT 3 PASS/, 60_000);
  assert.ok(readdirSync(`/proc/${v.pid}/task`).length > 5, 'the JVM runs its threads');
  const dir = cleanups.tempDir('ckpt-jvm-img-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const last = Math.max(...[...v.output().matchAll(/^COUNT (\d+)/gm)].map((m) => Number(m[1])));
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  await rv.waitFor(new RegExp(`^COUNT ${last + 3} `, 'm'), 60_000);
  const after = v.output().split('\n').filter((l) => /^COUNT (\d+)/.exec(l) && Number(/^COUNT (\d+)/.exec(l)![1]) > last);
  assert.ok(after.length >= 3, v.output());
  assert.ok(after.every((l) => l.endsWith(' PASS')), after.join('\n'));
});
