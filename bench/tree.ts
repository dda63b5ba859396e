/**
 * Process trees: dump and restore of test/victims/bench-tree N (N processes, fan-out
 * 10, each with 16 KiB of touched memory and a pipe to its parent, all sleeping),
 * for N = 1 and N = 100, and the cost of one more process: (T(100) - T(1)) / 99.
 * After the first restore every process is poked (SIGUSR1): each checks its memory
 * and the counts travel up the restored pipes to the root, which prints PASS/FAIL.
 */
import { join } from 'node:path';
import { kill as sysKill } from '../src/sys/index.js';
import { startVictim, wrapPid, type Victim } from '../test/helpers/victim.js';
import { SIGUSR1, f1, f3, killAll, liveDirs, livePids, median, rmDir, shmDir, table, timedTreeCycle, track, waitForNew } from './util.js';

export interface TreeRow {
  procs: number;
  dump: number[];
  frozen: number[];
  /** dump's totalMs - frozenMs: seizing every thread of every process. */
  seize: number[];
  restore: number[];
  pages: number;
  bytes: number;
  dumped: number;
  restored: number;
  verified: string;
}

async function one(procs: number, rep: number, row: TreeRow): Promise<void> {
  const v = track(startVictim('bench-tree', { args: [String(procs), '16'] }));
  const dir = shmDir('tree');
  let pids: number[] = [v.pid];
  try {
    await v.waitFor(/READY pid=\d+.*\n/, 60000);
    pids = [...v.output().matchAll(/PROC \d+ (\d+)/g)].map((m) => Number(m[1]));
    for (const p of pids) livePids.add(p);
    if (pids.length !== procs) throw new Error(`bench-tree: ${pids.length} PROC lines for ${procs} processes`);
    const { d, r, dumpMs, restoreMs, from } = await timedTreeCycle(v, { pids, imagesDir: join(dir, 'img') });
    row.dump.push(dumpMs);
    row.frozen.push(d.frozenMs);
    row.seize.push(d.totalMs - d.frozenMs);
    row.restore.push(restoreMs);
    row.pages = d.pages;
    row.bytes = d.bytes;
    row.dumped = d.processes;
    row.restored = r.processes;
    if (rep === 0) {
      const root: Victim = wrapPid(r.pid, v.dir, v.log);
      for (const p of pids) sysKill(p, SIGUSR1);
      row.verified = await waitForNew(root, { pattern: /(PASS|FAIL) tree.*/, from, timeoutMs: 30000 });
    }
  } finally {
    await killAll(pids);
    await v.cleanup();
    liveDirs.delete(v.dir);
    rmDir(dir);
  }
}

export async function runTree(opts: { reps: number; sizes: number[] }): Promise<TreeRow[]> {
  const rows: TreeRow[] = [];
  for (const procs of opts.sizes) {
    process.stderr.write(`bench: tree of ${procs} x${opts.reps}\n`);
    const row: TreeRow = { procs, dump: [], frozen: [], seize: [], restore: [], pages: 0, bytes: 0, dumped: 0, restored: 0, verified: '' };
    for (let rep = 0; rep < opts.reps; rep++) await one(procs, rep, row);
    rows.push(row);
  }
  return rows;
}

export function reportTree(rows: TreeRow[]): void {
  console.log('\nProcess tree (test/victims/bench-tree N: fan-out 10, 16 KiB touched each, a pipe to the parent), in-process API, /dev/shm, medians:');
  console.log(table(['processes', 'runs', 'dumped/restored', 'pages', 'dump ms', 'seize ms', 'frozen ms', 'restore ms', 'all dumps', 'all restores', 'restored tree says'], rows.map((r) => [
    String(r.procs), String(r.dump.length), `${r.dumped}/${r.restored}`, String(r.pages), f1(median(r.dump)), f1(median(r.seize)), f1(median(r.frozen)), f1(median(r.restore)),
    r.dump.map((x) => x.toFixed(0)).join(' '), r.restore.map((x) => x.toFixed(0)).join(' '), r.verified,
  ])));
  const lo = rows[0];
  const hi = rows[rows.length - 1];
  if (!lo || !hi || hi.procs === lo.procs) return;
  const per = (k: 'dump' | 'restore') => (median(hi[k]) - median(lo[k])) / (hi.procs - lo.procs);
  const avg = (k: 'dump' | 'restore') => median(hi[k]) / hi.procs;
  console.log(`per process, (T(${hi.procs}) - T(${lo.procs})) / ${hi.procs - lo.procs}: dump ${f3(per('dump'))} ms, restore ${f3(per('restore'))} ms; T(${hi.procs}) / ${hi.procs}: dump ${f3(avg('dump'))} ms, restore ${f3(avg('restore'))} ms`);
}
