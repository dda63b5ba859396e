/**
 * A real JVM (HotSpot: a dozen threads, a garbage-collected heap, JIT code, PROT_NONE
 * guard and polling pages written through /proc/self/mem) through dump and restore,
 * after `jcmd PID VM.version` attached to it: the JVM then keeps an Attach Listener
 * thread listening on the unix socket /tmp/.java_pidN, and `jcmd` must work again
 * after restore. The JVM checks itself (JavaCounter: "COUNT n PASS"). A JVM that was
 * never attached is also dumped with CKPT_TEST_LONG=1. Skipped where there is no JDK.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { startVictim, waitGone, wrapPid } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const javac = ['/usr/bin/javac', '/usr/lib/jvm/default-java/bin/javac'].find(existsSync);
const jcmd = javac && join(javac, '..', 'jcmd');
const skip = !javac ? 'no JDK (javac) on this machine' : !existsSync(jcmd!) ? 'no jcmd beside javac' : false;
const LONG = process.env['CKPT_TEST_LONG'] === '1';

/** `jcmd PID VM.version`: attaches through /tmp/.java_pidN (made at the first attach). */
function vmVersion(pid: number): string {
  const r = spawnSync(jcmd!, [String(pid), 'VM.version'], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `jcmd ${pid} VM.version: ${r.stdout}${r.stderr}`);
  assert.match(r.stdout, /JDK \d+/, r.stdout);
  return r.stdout;
}

function threadNames(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((t) => readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim());
}

async function jvmRoundTrip(opts: { attach: boolean }): Promise<void> {
  const classes = cleanups.tempDir('ckpt-jvm-');
  const src = new URL('../victims/JavaCounter.java', import.meta.url).pathname;
  const c = spawnSync(javac!, ['-d', classes, src], { encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  const java = join(javac!, '..', 'java');
  // A small heap and the serial collector: a quicker start, fewer threads to wait for.
  const v = startVictim(java, { args: ['-Xmx64m', '-XX:+UseSerialGC', '-cp', classes, 'JavaCounter'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/COUNT 3 PASS/, 60_000);
  const socket = `/tmp/.java_pid${v.pid}`;
  cleanups.push(() => rmSync(socket, { force: true }));
  if (opts.attach) {
    vmVersion(v.pid);
    assert.ok(existsSync(socket), `${socket} after jcmd`);
    assert.ok(threadNames(v.pid).includes('Attach Listener'), 'the Attach Listener thread runs');
  }
  assert.ok(readdirSync(`/proc/${v.pid}/task`).length > 5, 'the JVM runs its threads');
  const dir = cleanups.tempDir('ckpt-jvm-img-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  const last = Math.max(...[...v.output().matchAll(/^COUNT (\d+)/gm)].map((m) => Number(m[1])));
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  await rv.waitFor(new RegExp(`^COUNT ${last + 3} `, 'm'), 60_000);
  if (opts.attach) {
    assert.ok(threadNames(r.pid).includes('Attach Listener'), 'the Attach Listener thread is back');
    vmVersion(r.pid); // through the restored listener on /tmp/.java_pidN
  }
  const after = v.output().split('\n').filter((l) => /^COUNT (\d+)/.exec(l) && Number(/^COUNT (\d+)/.exec(l)![1]) > last);
  assert.ok(after.length >= 3, v.output());
  assert.ok(after.every((l) => l.endsWith(' PASS')), after.join('\n'));
}

test('a JVM that `jcmd` attached to counts on after dump and restore, and `jcmd` attaches again', { skip }, async () => {
  await jvmRoundTrip({ attach: true });
});

test('a JVM program (GC heap, JIT, a dozen threads) never attached counts on after dump and restore', { skip: skip || (LONG ? false : 'CKPT_TEST_LONG=1 only') }, async () => {
  await jvmRoundTrip({ attach: false });
});
