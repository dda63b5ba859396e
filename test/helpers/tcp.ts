/** Shared steps of the TCP end-to-end tests: free ports, the network lock's table, a dump-restore-verdict round. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { dump, type DumpOptions } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import type { Cleanups } from './cleanup.js';
import { startVictim, waitGone, wrapPid, type Victim } from './victim.js';

/** A TCP port free on 127.0.0.1 just now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen({ host: '127.0.0.1', port: 0 }, r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Removes nftables table inet NAME if it is there. */
export const dropNftTable = (name: string) => void execFileSync('nft', ['-f', '-'], { input: `add table inet ${name}\ndelete table inet ${name}\n` });

/** Starts a victim; a failed restore would leave its network lock (table ckpt-PID): removed afterwards too. */
export function startLocked(cleanups: Cleanups, name: string, args: string[]): Victim {
  const v = startVictim(name, { args });
  cleanups.push(() => v.cleanup());
  cleanups.push(() => dropNftTable(`ckpt-${v.pid}`));
  return v;
}

/**
 * Dumps `v` (killing it), restores it, sends the restored process SIGUSR1 and returns
 * it with its verdict line (PASS or FAIL). `warnings` is how many the dump must give.
 */
export async function dumpRestoreVerdict(cleanups: Cleanups, v: Victim, opts: { warnings?: number; dump?: Partial<DumpOptions>; prefix: string }): Promise<{ rv: Victim; verdict: string }> {
  const dir = cleanups.tempDir(opts.prefix);
  const d = dump(v.pid, { ...opts.dump, imagesDir: dir });
  assert.equal(d.warnings.length, opts.warnings ?? 0, d.warnings.join('\n'));
  await waitGone(v.pid);
  const r = restore({ imagesDir: dir });
  const rv = wrapPid(r.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  kill(rv.pid, SIG.SIGUSR1);
  return { rv, verdict: (await rv.waitFor(/^(PASS|FAIL).*$/m, 30_000))[0] };
}
