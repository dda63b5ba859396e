/**
 * Lazy restore against full restore of the same images, alternately: how long until the
 * process runs again (restore() returns with the tree let go), and for the lazy one how
 * long until the lazy-pages server has every page in, with its fill rate (its log line).
 * The server is started at the beginning of the restore; its start-up (a Node process)
 * overlaps the reading of the images but is part of the time to resume.
 */
import { readFileSync } from 'node:fs';
import { restore } from '../src/restore/restore.js';
import { dump } from '../src/dump/dump.js';
import { startVictim, waitGone } from '../test/helpers/victim.js';
import { f0, f1, hrMs, killAll, livePids, median, rmDir, shmDir, sleep, table, track } from './util.js';

export interface LazyRow {
  name: string;
  full: number[];
  lazy: number[];
  /** ms from the tree running to every page in, and MiB/s, per lazy restore. */
  fillMs: number[];
  rate: number[];
}

async function filled(log: string, pid: number): Promise<{ ms: number; rate: number }> {
  const re = new RegExp(`process ${pid}: every page in, [\\d.]+ MiB, ([\\d.]+) ms after it was let go \\((\\d+) MiB/s\\)`);
  for (let i = 0; i < 3000; i++) {
    const m = re.exec(readFileSync(log, 'utf8'));
    if (m) return { ms: Number(m[1]), rate: Number(m[2]) };
    await sleep(10);
  }
  return { ms: NaN, rate: NaN };
}

async function one(mib: number, reps: number): Promise<LazyRow> {
  const v = track(startVictim('bench-mem', { args: [String(mib)] }));
  await v.waitFor(/READY/, 120000);
  const dir = shmDir('lazy');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  livePids.delete(v.pid);
  const row: LazyRow = { name: `${mib} MiB`, full: [], lazy: [], fillMs: [], rate: [] };
  const log = `${dir}/lazy-pages.log`;
  for (let i = 0; i < reps * 2; i++) {
    const lazy = i % 2 === 1;
    let r: ReturnType<typeof restore> | undefined;
    const ms = hrMs(() => {
      r = restore({ imagesDir: dir, lazyPages: lazy, check: false });
    });
    livePids.add(r!.pid);
    (lazy ? row.lazy : row.full).push(ms);
    if (lazy) {
      const f = await filled(log, r!.pid);
      row.fillMs.push(f.ms);
      row.rate.push(f.rate);
      await waitGone(r!.lazyPages!.serverPid);
    }
    await killAll([r!.pid]);
  }
  rmDir(dir);
  return row;
}

export async function runLazy(opts: { reps: number; sizes: number[] }): Promise<LazyRow[]> {
  const rows: LazyRow[] = [];
  for (const mib of opts.sizes) rows.push(await one(mib, opts.reps));
  return rows;
}

export function reportLazy(rows: LazyRow[]): void {
  console.log('\nlazy restore: the same images restored alternately in full and lazily (medians, in-process API):');
  console.log(table(['case', 'full restore ms', 'lazy: running after ms', 'lazy: all in after +ms', 'fill MiB/s'], rows.map((r) => [
    r.name, f1(median(r.full)), f1(median(r.lazy)), f1(median(r.fillMs)), f0(median(r.rate)),
  ])));
  console.log('target (issue 14): running again <= 30 ms after ckpt starts restoring memory; all pages in at >= 2 GiB/s');
}
