/**
 * Shared by the bench modules: a registry of every victim PID and directory (removed
 * on exit, error or ^C), timing, medians, and Markdown tables.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { dump, type DumpResult } from '../src/dump/dump.js';
import { restore, type RestoreResult } from '../src/restore/restore.js';
import { kill as sysKill } from '../src/sys/index.js';
import { reapIfChild, waitGone, type Victim } from '../test/helpers/victim.js';

export const SHM = '/dev/shm';
export const MiB = 1024 * 1024;
export const SIGUSR1 = 10;

// ---- cleanup ----

export const livePids = new Set<number>();
export const liveDirs = new Set<string>();

export function cleanupSync(): void {
  for (const pid of livePids) {
    try {
      sysKill(pid, 9);
    } catch {
      // already gone
    }
    reapIfChild(pid);
  }
  livePids.clear();
  for (const d of liveDirs) fs.rmSync(d, { recursive: true, force: true });
  liveDirs.clear();
}
process.on('exit', cleanupSync);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    cleanupSync();
    process.exit(130);
  });
}

export function track(v: Victim): Victim {
  livePids.add(v.pid);
  liveDirs.add(v.dir);
  return v;
}

export async function drop(v: Victim): Promise<void> {
  await v.cleanup();
  livePids.delete(v.pid);
  liveDirs.delete(v.dir);
}

/** SIGKILLs every pid (a whole tree: its members are reparented to us, the subreaper) and waits until all are reaped. */
export async function killAll(pids: number[]): Promise<void> {
  for (const pid of pids) {
    try {
      sysKill(pid, 9);
    } catch {
      // already gone
    }
  }
  for (const pid of pids) {
    await waitGone(pid, 10000);
    livePids.delete(pid);
  }
}

/** Waits until every pid has gone (after a dump killed them) and forgets them. */
export async function allGone(pids: number[]): Promise<void> {
  for (const pid of pids) {
    await waitGone(pid, 10000);
    livePids.delete(pid);
  }
}

export function shmDir(tag: string): string {
  const d = fs.mkdtempSync(join(SHM, `ckpt-bench-${tag}-`));
  liveDirs.add(d);
  return d;
}

export function rmDir(d: string): void {
  fs.rmSync(d, { recursive: true, force: true });
  liveDirs.delete(d);
}

// ---- measuring ----

export interface TreeCycle {
  d: DumpResult;
  r: RestoreResult;
  dumpMs: number;
  restoreMs: number;
  /** Length of the victim's output before the restore: what the restored tree writes comes after. */
  from: number;
}

/**
 * Dumps the tree of `v` (which kills it) into `imagesDir`, waits until every one of
 * `pids` is gone, restores it, and registers the pids again (same PIDs after restore).
 */
export async function timedTreeCycle(v: Victim, args: { pids: number[]; imagesDir: string }): Promise<TreeCycle> {
  let d: DumpResult | undefined;
  const dumpMs = hrMs(() => {
    d = dump(v.pid, { imagesDir: args.imagesDir });
  });
  await allGone(args.pids);
  const from = v.output().length;
  let r: RestoreResult | undefined;
  const restoreMs = hrMs(() => {
    r = restore({ imagesDir: args.imagesDir });
  });
  // Same PIDs (clone3 set_tid); the root is our child, the rest are its descendants.
  for (const p of args.pids) livePids.add(p);
  return { d: d!, r: r!, dumpMs, restoreMs, from };
}

export function hrMs(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Wall and CPU time (user + system of this process: ckpt's own work, not the target's) of fn, ms. */
export function timed(fn: () => void): { wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const wall = hrMs(fn);
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Waits for `pattern` in output the victim writes from offset `from` on. */
export async function waitForNew(v: Victim, opts: { pattern: RegExp; from: number; timeoutMs?: number }): Promise<string> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20000);
  for (;;) {
    const m = v.output().slice(opts.from).match(opts.pattern);
    if (m) return m[0];
    if (Date.now() > deadline) throw new Error(`pid ${v.pid}: no ${opts.pattern} after restore; output:\n${v.output().slice(-500)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until `count` matches of `pattern` (global) appear from offset `from` on; returns them. */
export async function waitForCount(v: Victim, opts: { pattern: RegExp; from: number; count: number; timeoutMs?: number }): Promise<string[]> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30000);
  for (;;) {
    const ms = [...v.output().slice(opts.from).matchAll(opts.pattern)].map((m) => m[0]);
    if (ms.length >= opts.count) return ms;
    if (Date.now() > deadline) throw new Error(`pid ${v.pid}: ${ms.length} of ${opts.count} ${opts.pattern}; output:\n${v.output().slice(-500)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---- output ----

export const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
export const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
export const f2 = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : '-');
export const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '-');

export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' | ')} |`;
  return [line(head), `|${w.map((n, i) => (i === 0 ? ` ${'-'.repeat(n)} ` : ` ${'-'.repeat(n - 1)}: `)).join('|')}|`, ...rows.map(line)].join('\n');
}
