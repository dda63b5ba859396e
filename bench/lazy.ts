/**
 * Lazy restore against full restore of the same images, alternately.
 *
 * "running after" (issue 14's "running again after ckpt starts restoring memory") is,
 * on CLOCK_MONOTONIC: from the start of the memory phase (restore's 'memory' event: the
 * process exists, its memory is about to be rebuilt) to the later of the tree let go
 * (the 'let-go' event) and the first fault the lazy-pages server served (its log line):
 * the victim touches its lazy stack at once when let go, so it runs only once both
 * happened. Its two parts are shown too. "all in" is the server's own log line (from the
 * tree let go to every page in, and its rate). The lazy-pages server runs from the built
 * CLI (bin/ckpt.js, as `ckpt restore --lazy-pages` starts it) when dist/ is built, else
 * through tsx (seconds to start under load). Full restore: restore() returning.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { restore } from '../src/restore/restore.js';
import { dump } from '../src/dump/dump.js';
import { startVictim, waitGone } from '../test/helpers/victim.js';
import { f0, f1, hrMs, killAll, livePids, median, rmDir, shmDir, sleep, table, track } from './util.js';

const root = new URL('..', import.meta.url).pathname;

export interface LazyRow {
  name: string;
  server: string;
  full: number[];
  /** ms from the memory phase's start to the tree running (let go and its first fault served). */
  lazy: number[];
  /** ms from the memory phase's start to the tree let go, and ckpt's CPU ms (user+sys) in that time. */
  letGo: number[];
  letGoCpu: number[];
  /** ms from the tree let go to the first fault served (0 if served before). */
  firstFault: number[];
  /** ms from the tree let go to every page in, and the server's copy rate in MiB/s, per lazy restore. */
  fillMs: number[];
  rate: number[];
  /** MiB copied per second of the server's CPU (what the rate would be with a CPU of its own). */
  cpuRate: number[];
  mmapCpuRate: number[];
  /** The same with the server copying from a mapping of the page file (CKPT_LAZY_FILL=mmap). */
  mmapFillMs: number[];
  mmapRate: number[];
}

/** What the log says of this restore (lines after byte `from`: each restore has the same pid). */
async function fromLog(log: string, args: { pid: number; from: number }): Promise<{ ms: number; rate: number; cpuRate: number; firstFaultNs: bigint | undefined }> {
  const pid = args.pid;
  const re = new RegExp(`process ${pid}: every page in, ([\\d.]+) MiB, ([\\d.]+) ms after it was let go \\(copied at (\\d+) MiB/s in [\\d.]+ ms, ([\\d.]+) ms of CPU`);
  const first = new RegExp(`process ${pid}: first fault served at (\\d+) ns`);
  for (let i = 0; i < 3000; i++) {
    const text = readFileSync(log).subarray(args.from).toString('utf8');
    const m = re.exec(text);
    const f = first.exec(text);
    if (m) return { ms: Number(m[2]), rate: Number(m[3]), cpuRate: Number(m[1]) / (Number(m[4]) / 1000), firstFaultNs: f ? BigInt(f[1]!) : undefined };
    await sleep(10);
  }
  return { ms: NaN, rate: NaN, cpuRate: NaN, firstFaultNs: undefined };
}

function serverCommand(): { command?: string[]; server: string } {
  const cli = join(root, 'bin/ckpt.js');
  if (existsSync(join(root, 'dist/bin/ckpt.cjs'))) return { command: [process.execPath, cli, 'lazy-pages'], server: 'built CLI' };
  return { server: 'tsx' };
}

async function one(mib: number, reps: number): Promise<LazyRow> {
  const v = track(startVictim('bench-mem', { args: [String(mib)] }));
  await v.waitFor(/READY/, 120000);
  const dir = shmDir('lazy');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  livePids.delete(v.pid);
  const { command, server } = serverCommand();
  const row: LazyRow = { name: `${mib} MiB`, server, full: [], lazy: [], letGo: [], letGoCpu: [], firstFault: [], fillMs: [], rate: [], cpuRate: [], mmapCpuRate: [], mmapFillMs: [], mmapRate: [] };
  const log = `${dir}/lazy-pages.log`;
  const ms = (a: bigint, b: bigint) => Number(b - a) / 1e6;
  // Full, lazy (pread fill), lazy (mmap fill), in turn.
  for (let i = 0; i < reps * 3; i++) {
    const lazy = i % 3 !== 0;
    const mmap = i % 3 === 2;
    process.env['CKPT_LAZY_FILL'] = mmap ? 'mmap' : 'pread';
    let r: ReturnType<typeof restore> | undefined;
    let memoryAt: bigint | undefined;
    let letGoAt = 0n;
    let cpuAt: NodeJS.CpuUsage | undefined;
    let cpuMs = NaN;
    const from = existsSync(log) ? statSync(log).size : 0;
    const took = hrMs(() => {
      r = restore({
        imagesDir: dir, lazyPages: lazy, lazyPagesCommand: command, check: false,
        onEvent: (e) => {
          if (e.phase === 'memory' && memoryAt === undefined) {
            memoryAt = process.hrtime.bigint();
            cpuAt = process.cpuUsage();
          }
          if (e.phase === 'let-go') {
            letGoAt = process.hrtime.bigint();
            const c = process.cpuUsage(cpuAt);
            cpuMs = (c.user + c.system) / 1000;
          }
        },
      });
    });
    livePids.add(r!.pid);
    if (!lazy) row.full.push(took);
    if (lazy) {
      const f = await fromLog(log, { pid: r!.pid, from });
      const first = f.firstFaultNs ?? letGoAt;
      if (!mmap) {
        row.letGo.push(ms(memoryAt!, letGoAt));
        row.letGoCpu.push(cpuMs);
        row.firstFault.push(first > letGoAt ? ms(letGoAt, first) : 0);
        row.lazy.push(ms(memoryAt!, first > letGoAt ? first : letGoAt));
      }
      (mmap ? row.mmapFillMs : row.fillMs).push(f.ms);
      (mmap ? row.mmapRate : row.rate).push(f.rate);
      (mmap ? row.mmapCpuRate : row.cpuRate).push(f.cpuRate);
      await waitGone(r!.lazyPages!.serverPid);
    }
    await killAll([r!.pid]);
  }
  delete process.env['CKPT_LAZY_FILL'];
  rmDir(dir);
  return row;
}

export async function runLazy(opts: { reps: number; sizes: number[] }): Promise<LazyRow[]> {
  const rows: LazyRow[] = [];
  for (const mib of opts.sizes) rows.push(await one(mib, opts.reps));
  return rows;
}

export function reportLazy(rows: LazyRow[]): void {
  console.log('\nlazy restore: the same images restored alternately in full and lazily (medians, in-process API; "running after" from the memory phase, see bench/lazy.ts):');
  console.log(table(['case', 'server', 'full restore ms', 'lazy: running after ms', '= let go ms', '(ckpt CPU ms)', '+ first fault ms', 'all in after +ms', 'copy MiB/s', '(per CPU s)', 'mmap fill: all in +ms', 'copy MiB/s', '(per CPU s)'], rows.map((r) => [
    r.name, r.server, f1(median(r.full)), f1(median(r.lazy)), f1(median(r.letGo)), f1(median(r.letGoCpu)), f1(median(r.firstFault)), f1(median(r.fillMs)), f0(median(r.rate)), f0(median(r.cpuRate)),
    f1(median(r.mmapFillMs)), f0(median(r.mmapRate)), f0(median(r.mmapCpuRate)),
  ])));
  console.log('target (issue 14): running again <= 30 ms after ckpt starts restoring memory; all pages in at >= 2 GiB/s');
}
