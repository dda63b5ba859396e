/**
 * Threads: dump and restore of test/victims/threads with 1, 8, 100 and 1000 threads
 * (a fresh victim per repetition, images in /dev/shm), and the cost of one more
 * thread: (T(1000) - T(1)) / 999, against the target of < 0.5 ms per thread.
 */
import { join } from 'node:path';
import { dump } from '../src/dump/dump.js';
import { restore } from '../src/restore/restore.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../test/helpers/victim.js';
import { drop, f1, f3, hrMs, livePids, median, rmDir, shmDir, table, track, waitForNew } from './util.js';

export interface ThreadsRow {
  threads: number;
  dump: number[];
  frozen: number[];
  /** dump's totalMs - frozenMs: seizing every thread of every process. */
  seize: number[];
  restore: number[];
  pages: number;
  verified: string;
}

async function one(threads: number, rep: number, row: ThreadsRow): Promise<void> {
  // Idle pool threads, as in a server: busy victims would starve ckpt itself of CPU on two cores.
  const v = track(startVictim('bench-threads', { args: [String(threads)] }));
  let restored: Victim | undefined;
  const dir = shmDir('threads');
  try {
    await v.waitFor(/READY pid=\d+ threads=\d+ tids=.*\n/, 60000);
    const imagesDir = join(dir, 'img');
    let d: ReturnType<typeof dump> | undefined;
    const dumpMs = hrMs(() => {
      d = dump(v.pid, { imagesDir });
    });
    await waitGone(v.pid, 20000);
    livePids.delete(v.pid);
    const from = v.output().length;
    let pid = 0;
    const restoreMs = hrMs(() => {
      pid = restore({ imagesDir }).pid;
    });
    restored = wrapPid(pid, v.dir, v.log);
    livePids.add(pid);
    row.dump.push(dumpMs);
    row.frozen.push(d!.frozenMs);
    row.seize.push(d!.totalMs - d!.frozenMs);
    row.restore.push(restoreMs);
    row.pages = d!.pages;
    // Every thread checks its TID, mask and name and that it progresses; main reports each 100 ms.
    if (rep === 0) row.verified = await waitForNew(restored, { pattern: /TICK \d+ (PASS|FAIL)/, from, timeoutMs: 30000 });
  } finally {
    if (restored) await drop(restored);
    await drop(v);
    rmDir(dir);
  }
}

export async function runThreads(opts: { reps: number; counts: number[] }): Promise<ThreadsRow[]> {
  const rows: ThreadsRow[] = [];
  for (const threads of opts.counts) {
    process.stderr.write(`bench: threads ${threads} x${opts.reps}\n`);
    const row: ThreadsRow = { threads, dump: [], frozen: [], seize: [], restore: [], pages: 0, verified: '' };
    for (let rep = 0; rep < opts.reps; rep++) await one(threads, rep, row);
    rows.push(row);
  }
  return rows;
}

export function reportThreads(rows: ThreadsRow[]): void {
  console.log('\nThreads (test/victims/threads N), in-process API, images in /dev/shm, medians:');
  console.log(table(['threads', 'runs', 'pages', 'dump ms', 'seize ms', 'frozen ms', 'restore ms', 'all dumps', 'all restores', 'restored says'], rows.map((r) => [
    String(r.threads), String(r.dump.length), String(r.pages), f1(median(r.dump)), f1(median(r.seize)), f1(median(r.frozen)), f1(median(r.restore)),
    r.dump.map((x) => x.toFixed(0)).join(' '), r.restore.map((x) => x.toFixed(0)).join(' '), r.verified,
  ])));
  const lo = rows[0];
  const hi = rows[rows.length - 1];
  if (!lo || !hi || hi.threads === lo.threads) return;
  const per = (k: 'dump' | 'restore') => (median(hi[k]) - median(lo[k])) / (hi.threads - lo.threads);
  const verdict = (x: number) => (x < 0.5 ? 'met' : 'MISSED');
  console.log(`per thread, (T(${hi.threads}) - T(${lo.threads})) / ${hi.threads - lo.threads}: dump ${f3(per('dump'))} ms (target < 0.5 ms: ${verdict(per('dump'))}), restore ${f3(per('restore'))} ms (target < 0.5 ms: ${verdict(per('restore'))})`);
}
