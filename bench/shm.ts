/**
 * Shared memory trees: test/victims/bench-shm (6 processes sharing 64 MiB, half a SysV
 * segment, half an unlinked POSIX shm object, every page mapped in every process)
 * dumped with the in-process API and left running (frozen: from the freeze to the
 * release), then killed and restored. Issue 13's target: the tree frozen ≤ 1.5x the time
 * to copy 64 MiB once, which bench-copy measures in the same run (process_vm_readv
 * into a buffer and write(2) to a new tmpfs file, on one CPU, cold and warm). After
 * the first restore the root pokes every process, each checks the whole pattern
 * (SIGUSR1 → PASS).
 *
 *   node --import tsx bench/shm.ts [MIB=64] [reps=3]
 */
import { join } from 'node:path';
import { dump, type DumpResult } from '../src/dump/dump.js';
import { restore } from '../src/restore/restore.js';
import { kill as sysKill } from '../src/sys/index.js';
import { startVictim, wrapPid } from '../test/helpers/victim.js';
import { baselines } from './mem.js';
import { SIGUSR1, f1, f2, hrMs, killAll, liveDirs, livePids, median, rmDir, shmDir, table, timed, track, waitForNew } from './util.js';

export interface ShmResult {
  mib: number;
  dump: number[];
  /** CPU time of the ckpt process per tree dump (user + system). */
  dumpCpu: number[];
  frozen: number[];
  restore: number[];
  /** bench-copy outside: the one-CPU C copy of the same number of bytes, ms. */
  copy: { cold: number; warm: number };
  verified: string;
}

async function one(res: ShmResult, rep: number): Promise<void> {
  const v = track(startVictim('bench-shm', { args: [String(res.mib)] }));
  const dir = shmDir('shm');
  let pids: number[] = [v.pid];
  try {
    await v.waitFor(/READY pid=\d+.*\n/, 60000);
    pids = [...v.output().matchAll(/PROC \d+ (\d+)/g)].map((m) => Number(m[1]));
    for (const p of pids) livePids.add(p);
    const imagesDir = join(dir, 'img');
    // Left running, as a server is: frozen is then the time from the freeze to the
    // release (a killed tree's would add the kernel's teardown of its memory).
    let d: DumpResult | undefined;
    const t = timed(() => void (d = dump(v.pid, { imagesDir, leaveRunning: true })));
    res.dump.push(t.wall);
    res.dumpCpu.push(t.cpu);
    res.frozen.push(d!.frozenMs);
    await killAll(pids);
    const from = v.output().length;
    let root = 0;
    res.restore.push(hrMs(() => void (root = restore({ imagesDir }).pid)));
    for (const p of pids) livePids.add(p);
    if (rep === 0) {
      sysKill(root, SIGUSR1);
      res.verified = await waitForNew(wrapPid(root, v.dir, v.log), { pattern: /(PASS|FAIL) shm.*/, from, timeoutMs: 30000 });
    }
  } finally {
    await killAll(pids);
    await v.cleanup();
    liveDirs.delete(v.dir);
    rmDir(dir);
  }
}

export async function runShm(opts: { mib: number; reps: number }): Promise<ShmResult> {
  const res: ShmResult = { mib: opts.mib, dump: [], dumpCpu: [], frozen: [], restore: [], copy: { cold: NaN, warm: NaN }, verified: '' };
  for (let rep = 0; rep < opts.reps; rep++) {
    process.stderr.write(`bench: shm ${rep + 1}/${opts.reps}\n`);
    await one(res, rep);
  }
  const dir = shmDir('shm-copy');
  try {
    res.copy = baselines(opts.mib, dir).outside;
  } finally {
    rmDir(dir);
  }
  return res;
}

export function reportShm(res: ShmResult): void {
  console.log(`\nShared memory tree (test/victims/bench-shm: 6 processes sharing ${res.mib} MiB, SysV + POSIX shm), in-process API, /dev/shm, medians:`);
  console.log(table(['dump ms', 'dump CPU ms', 'frozen ms', 'restore ms', 'copy cold ms', 'copy warm ms', 'frozen / copy cold', 'frozen / copy warm', 'all frozen', 'restored tree says'], [[
    f1(median(res.dump)), f1(median(res.dumpCpu)), f1(median(res.frozen)), f1(median(res.restore)), f1(res.copy.cold), f1(res.copy.warm),
    f2(median(res.frozen) / res.copy.cold), f2(median(res.frozen) / res.copy.warm), res.frozen.map((x) => x.toFixed(0)).join(' '), res.verified,
  ]]));
  console.log(`target (issue 13): frozen <= 1.5x the time to copy ${res.mib} MiB once (bench-copy outside: process_vm_readv + write(2) to a new tmpfs file, one CPU)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [mib = '64', reps = '3'] = process.argv.slice(2);
  const { cleanupSync } = await import('./util.js');
  try {
    reportShm(await runShm({ mib: Number(mib), reps: Number(reps) }));
  } finally {
    cleanupSync();
  }
}
