/**
 * Round trips of victims that answer SIGUSR1 with one verdict line, "CHECK PASS" or
 * "CHECK FAIL: why" (sock-*.c): dump and restore one, and get its verdict; or see a
 * dump of one refused.
 */
import assert from 'node:assert/strict';
import { statSync, truncateSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from './victim.js';
import type { Cleanups } from './cleanup.js';

/** Sends SIGUSR1 and returns the next CHECK line the victim prints. */
export async function checkLine(v: Victim): Promise<string> {
  const before = (v.output().match(/^CHECK /gm) ?? []).length;
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(new RegExp(`(CHECK [^\\n]*\\n[^]*?){${before + 1}}`));
  return [...v.output().matchAll(/^CHECK .*$/gm)].map((x) => x[0])[before]!;
}

/** Starts victim `name`, dumps it (no warnings), restores it with its PID (no warnings): its verdict after restore. */
export async function verdictAfterRestore(name: string, opts: { cleanups: Cleanups; args?: string[] }): Promise<string> {
  const { cleanups } = opts;
  const v = startVictim(name, { args: opts.args ?? [] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir(`ckpt-${name}-img-`);
  const logAtDump = statSync(v.log).size;
  const r = dump(v.pid, { imagesDir: dir });
  assert.deepEqual(r.warnings, []);
  await waitGone(v.pid);
  truncateSync(v.log, logAtDump);
  const res = restore({ imagesDir: dir });
  const rv = wrapPid(res.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(rv.pid, v.pid);
  assert.deepEqual(res.warnings, []);
  return checkLine(rv);
}

/** Starts victim `name` with `args`; its dump fails UNSUPPORTED with a message matching `why`, and it runs on. */
export async function assertDumpRefused(name: string, opts: { cleanups: Cleanups; args: string[]; why: RegExp }): Promise<Victim> {
  const v = startVictim(name, { args: opts.args });
  opts.cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  assert.throws(() => dump(v.pid, { imagesDir: opts.cleanups.tempDir(`ckpt-${name}-img-`) }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'UNSUPPORTED', e.message);
    assert.match(e.message, opts.why);
    return true;
  });
  assert.ok(v.alive());
  return v;
}
