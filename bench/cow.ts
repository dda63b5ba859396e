/**
 * Copy-on-write across dump and restore: test/victims/bench-fork M 4, a "forked
 * server" whose parent filled M MiB of private anonymous memory before forking 4
 * children that only read it. Sums Rss and Pss of /proc/PID/smaps_rollup over the 5
 * processes before the dump, after the restore and after every process has read its
 * whole copy (SIGUSR1 -> PASS/FAIL), and reports how much the dump wrote. With the
 * sharing kept, total Pss stays ~M MiB (not 5 x M) and the dump writes ~M MiB once.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { kill as sysKill } from '../src/sys/index.js';
import { startVictim, wrapPid } from '../test/helpers/victim.js';
import { MiB, SIGUSR1, f0, f1, killAll, liveDirs, livePids, median, rmDir, shmDir, table, timedTreeCycle, track, waitForCount } from './util.js';

export interface Mem {
  rss: number;
  pss: number;
  privateDirty: number;
}

export interface CowResult {
  mib: number;
  procs: number;
  dump: number[];
  frozen: number[];
  restore: number[];
  pages: number;
  bytes: number;
  before?: Mem;
  after?: Mem;
  afterCheck?: Mem;
  verified: string[];
}

/** Sum over pids of smaps_rollup Rss, Pss, Private_Dirty, in KiB. */
export function memOf(pids: number[]): Mem {
  const m: Mem = { rss: 0, pss: 0, privateDirty: 0 };
  for (const pid of pids) {
    const t = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const get = (k: string) => Number(t.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
    m.rss += get('Rss');
    m.pss += get('Pss');
    m.privateDirty += get('Private_Dirty');
  }
  return m;
}

async function one(opts: { mib: number; kids: number; rep: number }, res: CowResult): Promise<void> {
  const v = track(startVictim('bench-fork', { args: [String(opts.mib), String(opts.kids)] }));
  const dir = shmDir('cow');
  let pids: number[] = [v.pid];
  try {
    await v.waitFor(/READY pid=\d+.*\n/, 120000);
    pids = [...v.output().matchAll(/PROC \S+ (\d+)/g)].map((m) => Number(m[1]));
    for (const p of pids) livePids.add(p);
    res.procs = pids.length;
    const before = memOf(pids);
    const { d, r, dumpMs, restoreMs, from } = await timedTreeCycle(v, { pids, imagesDir: join(dir, 'img') });
    res.dump.push(dumpMs);
    res.frozen.push(d.frozenMs);
    res.restore.push(restoreMs);
    res.pages = d.pages;
    res.bytes = d.bytes;
    if (opts.rep === 0) {
      res.before = before;
      res.after = memOf(pids);
      const root = wrapPid(r.pid, v.dir, v.log);
      for (const p of pids) sysKill(p, SIGUSR1);
      res.verified = await waitForCount(root, { pattern: /(PASS|FAIL) \S+ \d+.*/g, from, count: pids.length, timeoutMs: 60000 });
      res.afterCheck = memOf(pids);
    }
  } finally {
    await killAll(pids);
    await v.cleanup();
    liveDirs.delete(v.dir);
    rmDir(dir);
  }
}

export async function runCow(opts: { reps: number; mib: number; kids: number }): Promise<CowResult> {
  process.stderr.write(`bench: forked server ${opts.mib} MiB + ${opts.kids} children x${opts.reps}\n`);
  const res: CowResult = { mib: opts.mib, procs: 0, dump: [], frozen: [], restore: [], pages: 0, bytes: 0, verified: [] };
  for (let rep = 0; rep < opts.reps; rep++) await one({ mib: opts.mib, kids: opts.kids, rep }, res);
  return res;
}

export function reportCow(c: CowResult): void {
  const mb = (kib: number | undefined) => f0((kib ?? NaN) / 1024);
  console.log(`\nForked server (test/victims/bench-fork ${c.mib}: ${c.mib} MiB touched by the parent, then ${c.procs - 1} read-only children), ${c.procs} processes, in-process API, /dev/shm:`);
  console.log(table(['when', 'total Rss MiB', 'total Pss MiB', 'total Private_Dirty MiB'], [
    ['before dump', mb(c.before?.rss), mb(c.before?.pss), mb(c.before?.privateDirty)],
    ['after restore', mb(c.after?.rss), mb(c.after?.pss), mb(c.after?.privateDirty)],
    ['after every process read its copy', mb(c.afterCheck?.rss), mb(c.afterCheck?.pss), mb(c.afterCheck?.privateDirty)],
  ]));
  const pass = c.verified.filter((x) => x.startsWith('PASS')).length;
  console.log(table(['runs', 'pages dumped', 'MiB dumped', 'dump ms', 'frozen ms', 'restore ms', 'all dumps', 'all restores', 'verified'], [[
    String(c.dump.length), String(c.pages), f1(c.bytes / MiB), f1(median(c.dump)), f1(median(c.frozen)), f1(median(c.restore)),
    c.dump.map((x) => x.toFixed(0)).join(' '), c.restore.map((x) => x.toFixed(0)).join(' '), `${pass}/${c.procs} PASS`,
  ]]));
  const pssRatio = (c.after?.pss ?? NaN) / 1024 / c.mib;
  console.log(`sharing kept: total Pss after restore = ${pssRatio.toFixed(2)} x ${c.mib} MiB (${c.procs} private copies would be ${c.procs}.00 x); the dump wrote ${(c.bytes / MiB / c.mib).toFixed(2)} x ${c.mib} MiB`);
  for (const line of c.verified) if (!line.startsWith('PASS')) console.log(`  ${line}`);
}
