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
import { SIGUSR1, drop, f1, hrMs, livePids, median, rmDir, shmDir, table, track, waitForNew } from './util.js';

export interface MapsRow {
  name: string;
  dump: number[];
  restore: number[];
  verified: string;
}

async function cycle(row: MapsRow, args: { victim: string; vargs: string[]; verify?: RegExp }): Promise<void> {
  const v = track(startVictim(args.victim, { args: args.vargs }));
  const dir = shmDir('maps');
  let restored;
  try {
    await v.waitFor(/READY pid=\d+.*\n/, 120000);
    const imagesDir = join(dir, 'img');
    row.dump.push(hrMs(() => void dump(v.pid, { imagesDir })));
    await waitGone(v.pid);
    livePids.delete(v.pid);
    let pid = 0;
    row.restore.push(hrMs(() => {
      pid = restore({ imagesDir }).pid;
    }));
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
  const small: MapsRow = { name: 'small (counter)', dump: [], restore: [], verified: '' };
  const many: MapsRow = { name: `manymaps ${opts.n}`, dump: [], restore: [], verified: '' };
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
  console.log(table(['case', 'dump ms', 'restore ms', 'runs (dump / restore)'], rows.map((r) => [r.name, f1(median(r.dump)), f1(median(r.restore)), `${r.dump.map((x) => x.toFixed(0)).join(' ')} / ${r.restore.map((x) => x.toFixed(0)).join(' ')}`])));
  console.log(`more than the small process: dump ${f1(median(many.dump) - median(small.dump))} ms, restore ${f1(median(many.restore) - median(small.restore))} ms (target <= 150 ms each); restored manymaps says ${many.verified}`);
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
