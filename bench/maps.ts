/**
 * Many mappings: test/victims/manymaps N (N one-page areas that cannot merge) dumped
 * and restored with the in-process API, next to the small counter in the same run.
 * Target (issue 13): N = 10 000 costs each of dump and restore ≤ 150 ms more than the
 * small process. After the first restore the victim checks every area (SIGUSR1 → PASS).
 *
 *   node --import tsx bench/maps.ts [N=10000] [reps=3]
 */
import { join } from 'node:path';
import { dump } from '../src/dump/dump.js';
import { restore } from '../src/restore/restore.js';
import { kill as sysKill } from '../src/sys/index.js';
import { startVictim, waitGone, wrapPid } from '../test/helpers/victim.js';
import { SIGUSR1, drop, f1, livePids, median, rmDir, shmDir, table, timed, track, waitForNew } from './util.js';

export interface MapsRow {
  name: string;
  dump: number[];
  restore: number[];
  /** CPU time of the ckpt process (user + system) for each dump and restore: ckpt's own time, which load inflates less than wall time. */
  dumpCpu: number[];
  restoreCpu: number[];
  verified: string;
}

async function cycle(row: MapsRow, args: { victim: string; vargs: string[]; verify?: RegExp }): Promise<void> {
  const v = track(startVictim(args.victim, { args: args.vargs }));
  const dir = shmDir('maps');
  let restored;
  try {
    await v.waitFor(/READY pid=\d+.*\n/, 120000);
    const imagesDir = join(dir, 'img');
    const d = timed(() => void dump(v.pid, { imagesDir }));
    row.dump.push(d.wall);
    row.dumpCpu.push(d.cpu);
    await waitGone(v.pid);
    livePids.delete(v.pid);
    let pid = 0;
    const r = timed(() => {
      pid = restore({ imagesDir }).pid;
    });
    row.restore.push(r.wall);
    row.restoreCpu.push(r.cpu);
    restored = wrapPid(pid, v.dir, v.log);
    livePids.add(pid);
    if (args.verify && !row.verified) {
      const from = restored.output().length;
      sysKill(pid, SIGUSR1);
      row.verified = await waitForNew(restored, { pattern: args.verify, from, timeoutMs: 60000 });
    }
  } finally {
    if (restored) await drop(restored);
    await drop(v);
    rmDir(dir);
  }
}

export async function runMaps(opts: { n: number; reps: number }): Promise<MapsRow[]> {
  const small: MapsRow = { name: 'small (counter)', dump: [], restore: [], dumpCpu: [], restoreCpu: [], verified: '' };
  const many: MapsRow = { name: `manymaps ${opts.n}`, dump: [], restore: [], dumpCpu: [], restoreCpu: [], verified: '' };
  for (let i = 0; i < opts.reps; i++) {
    process.stderr.write(`bench: maps ${i + 1}/${opts.reps}\n`);
    await cycle(small, { victim: 'counter', vargs: [] });
    await cycle(many, { victim: 'manymaps', vargs: [String(opts.n)], verify: /DONE fails=\d+/ });
  }
  return [small, many];
}

export function reportMaps(rows: MapsRow[]): void {
  const [small, many] = rows as [MapsRow, MapsRow];
  console.log('\nmany mappings, in-process API, images in /dev/shm, medians:');
  const runs = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(' ');
  console.log(table(['case', 'dump ms', 'restore ms', 'dump CPU ms', 'restore CPU ms', 'runs (dump / restore)', 'CPU runs (dump / restore)'], rows.map((r) => [
    r.name, f1(median(r.dump)), f1(median(r.restore)), f1(median(r.dumpCpu)), f1(median(r.restoreCpu)), `${runs(r.dump)} / ${runs(r.restore)}`, `${runs(r.dumpCpu)} / ${runs(r.restoreCpu)}`,
  ])));
  const more = (k: 'dump' | 'restore' | 'dumpCpu' | 'restoreCpu') => f1(median(many[k]) - median(small[k]));
  console.log(`more than the small process: dump ${more('dump')} ms (CPU ${more('dumpCpu')}), restore ${more('restore')} ms (CPU ${more('restoreCpu')}) (target <= 150 ms each of ckpt's own time); restored manymaps says ${many.verified}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [n = '10000', reps = '3'] = process.argv.slice(2);
  const { cleanupSync } = await import('./util.js');
  try {
    reportMaps(await runMaps({ n: Number(n), reps: Number(reps) }));
  } finally {
    cleanupSync();
  }
}
