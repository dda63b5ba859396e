/**
 * `ckpt migrate --post-copy` (the source through the API, the destination through the CLI
 * with --lazy-pages, on 127.0.0.1 in a PID namespace of its own): the final dump's pages
 * stay on the source, which serves them to the destination's restore, then to its
 * lazy-pages server, until it has every page. bench-mem rewrites a working set and
 * checks all its memory on SIGUSR1 (PASS/FAIL in its log, which the copy writes too).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { migrate } from '../../src/api/migrate.js';
import { kill as sysKill } from '../../src/sys/index.js';
import { startVictim, waitGone, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { receiver, tokenFile } from '../helpers/migrate-net.js';

const cleanups = useCleanups();
const dir = cleanups.tempDir('ckpt-migrate-pc-');
const token = tokenFile(dir);

/** The destination's copy of `pid`: the bench-mem whose innermost PID is `pid` in another PID namespace. */
function copyOf(pid: number): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === pid) continue;
    try {
      const status = readFileSync(`/proc/${d}/status`, 'utf8');
      const ns = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).map(Number);
      if (ns && ns.length > 1 && ns.at(-1) === pid && /^Name:\s+bench-mem$/m.test(status)) return Number(d);
    } catch {
      // gone
    }
  }
  return undefined;
}

async function verdict(v: Victim, pid: number): Promise<string> {
  const before = (v.output().match(/PASS|FAIL/g) ?? []).length;
  sysKill(pid, 10);
  const deadline = Date.now() + 30_000;
  while ((v.output().match(/PASS|FAIL/g) ?? []).length === before) {
    if (Date.now() > deadline) throw new Error(`no verdict from ${pid}:\n${v.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return v.output();
}

test('post-copy: the final dirty pages stay on the source until the destination, its copy running, has read them all', { timeout: 180_000 }, async () => {
  const v = startVictim('bench-mem', { args: ['32', '4'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY/);
  const r = receiver(undefined, { cleanups, dir: join(dir, 'dst'), token, extra: ['--lazy-pages'] });
  const port = await r.port;
  const res = migrate(v.pid, { to: { address: '127.0.0.1', port }, authToken: token, workDir: join(dir, 'work'), postCopy: true });
  await waitGone(v.pid);
  assert.equal(await r.exited, 0, r.stderr());
  // The final set never went over before the restore: the destination read it from here.
  assert.ok(res.postCopy && res.postCopy.bytes > 0, JSON.stringify(res));
  assert.ok(res.postCopy.bytes >= res.final.pages * 4096, `every final page was read from the source: ${JSON.stringify(res.postCopy)} for ${res.final.pages} pages`);
  const copy = copyOf(v.pid);
  assert.ok(copy, 'the copy runs on the destination');
  assert.doesNotMatch(await verdict(v, copy), /FAIL/);
});
