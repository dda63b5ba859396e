/**
 * Background snapshot (`dump -R --background`) against plain `dump -R` of the same
 * process, alternately, in one run: test/victims/bg-snap with two threads that keep
 * rewriting all of its memory (every page is written again and again: the worst case for
 * faults). Per dump: the frozen time ckpt reports, and the longest stall the victim
 * itself measured (CLOCK_MONOTONIC gap between two of its page writes, over the dump:
 * the freeze, or a write waiting for its page), plus, for the background one, the faults
 * served and the time of the copy after the process ran again. Images in /dev/shm.
 */
import { dump } from '../src/dump/dump.js';
import { kill as sysKill } from '../src/sys/index.js';
import { startVictim, type Victim } from '../test/helpers/victim.js';
import { f0, f1, median, rmDir, shmDir, table, track } from './util.js';

const SIGUSR2 = 12;

export interface BackgroundRow {
  name: string;
  plainFrozen: number[];
  plainStall: number[];
  bgFrozen: number[];
  bgProtect: number[];
  bgArm: number[];
  bgStall: number[];
  /** The longest stall that began once the tree ran again (the copy: writes waiting for their pages). */
  bgCopyStall: number[];
  bgCopy: number[];
  bgFaults: number[];
}

/** The victim's longest stall since it was last asked, in ms, and its gaps over 1 ms (end in ns of CLOCK_MONOTONIC, length in ms). */
async function stall(v: Victim): Promise<{ max: number; gaps: { end: bigint; ms: number }[] }> {
  const from = v.output().length;
  sysKill(v.pid, SIGUSR2);
  for (;;) {
    const out = v.output().slice(from);
    const max = /STALL max_us=(\d+)/.exec(out);
    if (max && /GAPS n=\d+/.test(out)) {
      const gaps = [...out.matchAll(/GAP end_ns=(\d+) us=(\d+)/g)].map((m) => ({ end: BigInt(m[1]!), ms: Number(m[2]) / 1000 }));
      return { max: Number(max[1]) / 1000, gaps };
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The longest of `gaps` that began after `from` (CLOCK_MONOTONIC ns), in ms; 0 if none. */
function longestAfter(gaps: { end: bigint; ms: number }[], from: bigint): number {
  return Math.max(0, ...gaps.filter((g) => g.end - BigInt(Math.round(g.ms * 1e6)) >= from).map((g) => g.ms));
}

async function one(mib: number, reps: number): Promise<BackgroundRow> {
  const v = track(startVictim('bg-snap', { args: [String(mib)] }));
  await v.waitFor(/READY/, 120000);
  const row: BackgroundRow = { name: `${mib} MiB`, plainFrozen: [], plainStall: [], bgFrozen: [], bgProtect: [], bgArm: [], bgStall: [], bgCopyStall: [], bgCopy: [], bgFaults: [] };
  await new Promise((r) => setTimeout(r, 200));
  for (let i = 0; i < reps * 2; i++) {
    const background = i % 2 === 1;
    const dir = shmDir('background');
    await stall(v); // starts the maximum again
    const t0 = process.hrtime.bigint();
    const r = dump(v.pid, { imagesDir: dir, leaveRunning: true, background });
    const { max: s, gaps } = await stall(v);
    if (background) {
      row.bgFrozen.push(r.frozenMs);
      row.bgProtect.push(r.background?.protectMs ?? NaN);
      row.bgArm.push(r.background?.armMs ?? NaN);
      row.bgStall.push(s);
      // performance.now() and hrtime both count CLOCK_MONOTONIC, as the victim does.
      row.bgCopyStall.push(longestAfter(gaps, t0 + BigInt(Math.round((r.freezingMs + r.frozenMs) * 1e6))));
      row.bgCopy.push(r.background?.copyMs ?? NaN);
      row.bgFaults.push(r.background?.faults ?? NaN);
    } else {
      row.plainFrozen.push(r.frozenMs);
      row.plainStall.push(s);
    }
    rmDir(dir);
  }
  await v.kill();
  return row;
}

export async function runBackground(opts: { reps: number; sizes: number[] }): Promise<BackgroundRow[]> {
  const rows: BackgroundRow[] = [];
  for (const mib of opts.sizes) rows.push(await one(mib, opts.reps));
  return rows;
}

export function reportBackground(rows: BackgroundRow[]): void {
  console.log('\nbackground snapshot: dump -R and dump -R --background of a process whose two threads rewrite all its memory, alternately (medians, in-process API):');
  console.log(table(['case', 'dump -R frozen ms', 'its longest stall ms', '--background frozen ms', 'of it: protect ms', 'protect before ms', 'its longest stall ms', 'of it, in the copy ms', 'copy after ms', 'faults'], rows.map((r) => [
    r.name, f1(median(r.plainFrozen)), f1(median(r.plainStall)), f1(median(r.bgFrozen)), f1(median(r.bgProtect)), f1(median(r.bgArm)), f1(median(r.bgStall)), f1(median(r.bgCopyStall)), f0(median(r.bgCopy)), f0(median(r.bgFaults)),
  ])));
  console.log('target (issue 14): dump -R --background of a 1 GiB process: the process\'s own longest stall <= 5 ms');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
  reportBackground(await runBackground({ reps: 3, sizes: sizes.length > 0 ? sizes : [256] }));
}
