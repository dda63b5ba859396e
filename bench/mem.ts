/**
 * The memory cases of `npm run bench` (section mem): dump and restore of a fresh
 * victim into fresh images, on cold and on warm memory, next to one-CPU C programs
 * doing the same work on fresh memory in the same run, and next to CRIU when
 * /work/shared/tools/criu (or $CKPT_BENCH_CRIU) runs here.
 *
 * Cold: nothing allocated or freed for COLD_MS before the step, so memory freed earlier
 * has been handed back to the host (free page reporting) and the step's new pages cost
 * a host fault each. Warm: right before the step, a tmpfs file the size of the victim
 * is written and removed, so the step reuses pages the guest still holds.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { dump } from '../src/dump/dump.js';
import { restore } from '../src/restore/restore.js';
import { kill as sysKill } from '../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../test/helpers/victim.js';
import { measurePhases, type PhaseTimes } from './phases.js';
import { MiB, SIGUSR1, drop, f0, f1, f2, hrMs, killAll, livePids, median, rmDir, shmDir, sleep, table, track, waitForNew } from './util.js';

const ROOT = new URL('../', import.meta.url).pathname;
/** Free page reporting waits 2 s before handing freed blocks to the host. */
export const COLD_MS = 4000;
const TEMPS = ['cold', 'warm'] as const;
type Temp = (typeof TEMPS)[number];

export interface MemSpec {
  name: string;
  victim: string;
  args: string[];
  /** MiB of the victim's big area (0: a small process, no C baselines). */
  mib: number;
  reps: number;
  /** bench-mem: SIGUSR1 makes it check its pattern; counter: it checks itself every TICK. */
  check: 'usr1' | 'tick';
  phases: boolean;
}

interface TempRuns {
  dump: number[];
  frozen: number[];
  restore: number[];
  /** bench-copy outside / fill: the one-CPU C copies (ms). */
  outside: number[];
  fill: number[];
  criuDump: number[];
  criuRestore: number[];
  verified: string;
}

export interface MemResult {
  spec: MemSpec;
  bytes: number;
  byTemp: Record<Temp, TempRuns>;
  criuNote?: string;
  phases?: PhaseTimes;
}

function criuBin(): string | undefined {
  const bin = process.env.CKPT_BENCH_CRIU ?? '/work/shared/tools/criu';
  if (!fs.existsSync(bin)) return undefined;
  return spawnSync(bin, ['check'], { encoding: 'utf8' }).status === 0 ? bin : undefined;
}

/** Writes and removes a tmpfs file of `bytes`: the next allocation reuses pages the guest just freed. */
function warmUp(dir: string, bytes: number): void {
  const buf = Buffer.alloc(4 * MiB, 0x5a);
  const file = join(dir, 'warm.bin');
  const fd = fs.openSync(file, 'wx', 0o600);
  for (let off = 0; off < bytes; off += buf.length) fs.writeSync(fd, buf, 0, Math.min(buf.length, bytes - off));
  fs.closeSync(fd);
  fs.rmSync(file);
}

async function prepare(temp: Temp, args: { dir: string; bytes: number }): Promise<void> {
  if (temp === 'cold') await sleep(COLD_MS);
  else warmUp(args.dir, args.bytes);
}

/** The C baselines on fresh memory: bench-copy prints each mode's cold and warm time. */
export function baselines(mib: number, dir: string): Record<'outside' | 'fill', Record<Temp, number>> {
  const r = spawnSync(join(ROOT, 'test/victims/bin/bench-copy'), [String(mib), dir, String(COLD_MS / 1000), 'outside', 'fill'], { encoding: 'utf8' });
  const get = (mode: string, temp: Temp) => Number(r.stdout.match(new RegExp(`MODE ${mode} .*${temp}=([\\d.]+)`))?.[1] ?? NaN);
  return {
    outside: { cold: get('outside', 'cold'), warm: get('outside', 'warm') },
    fill: { cold: get('fill', 'cold'), warm: get('fill', 'warm') },
  };
}

function timedCmd(cmd: string[]): { ms: number; ok: boolean; out: string } {
  let r: ReturnType<typeof spawnSync> | undefined;
  const ms = hrMs(() => {
    r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  });
  return { ms, ok: r!.status === 0, out: `${r!.stdout}${r!.stderr}`.slice(-400) };
}

/** CRIU on the same victim: dump (kills it) and restore detached; undefined + why when it fails. */
async function criuCycle(spec: MemSpec, args: { criu: string; temp: Temp; bytes: number }): Promise<{ dump: number; restore: number } | string> {
  const v = track(startVictim(spec.victim, { args: spec.args }));
  const dir = shmDir('criu');
  try {
    await v.waitFor(/READY pid=\d+.*\n|TICK/, 120000);
    await prepare(args.temp, { dir, bytes: args.bytes });
    const d = timedCmd([args.criu, 'dump', '-t', String(v.pid), '-D', dir, '--shell-job', '-o', 'dump.log']);
    if (!d.ok) return `criu dump failed: ${d.out.trim().split('\n').at(-1)}`;
    await waitGone(v.pid);
    livePids.delete(v.pid);
    await prepare(args.temp, { dir, bytes: args.bytes });
    const r = timedCmd([args.criu, 'restore', '-D', dir, '--shell-job', '-d', '-o', 'restore.log']);
    livePids.add(v.pid);
    if (!r.ok) return `criu restore failed: ${r.out.trim().split('\n').at(-1)}`;
    return { dump: d.ms, restore: r.ms };
  } finally {
    await killAll([v.pid]);
    await drop(v);
    rmDir(dir);
  }
}

async function ckptCycle(spec: MemSpec, args: { temp: Temp; res: MemResult; verify: boolean; phases: boolean }): Promise<void> {
  const runs = args.res.byTemp[args.temp];
  const v = track(startVictim(spec.victim, { args: spec.args }));
  let restored: Victim | undefined;
  const dir = shmDir('case');
  const bytes = Math.max(spec.mib, 16) * MiB;
  try {
    const ready = await v.waitFor(/READY pid=\d+.*\n/, 120000);
    if (args.phases) {
      const addr = ready[0].match(/addr=(0x[0-9a-f]+)/);
      if (addr) args.res.phases = measurePhases({ pid: v.pid, addr: BigInt(addr[1]!), len: spec.mib * MiB }, dir);
    }
    const imagesDir = join(dir, 'img');
    await prepare(args.temp, { dir, bytes });
    let d: ReturnType<typeof dump> | undefined;
    runs.dump.push(hrMs(() => {
      d = dump(v.pid, { imagesDir });
    }));
    runs.frozen.push(d!.frozenMs);
    args.res.bytes = d!.bytes;
    await waitGone(v.pid);
    livePids.delete(v.pid);
    await prepare(args.temp, { dir, bytes });
    let pid = 0;
    runs.restore.push(hrMs(() => {
      pid = restore({ imagesDir }).pid;
    }));
    restored = wrapPid(pid, v.dir, v.log);
    livePids.add(pid);
    if (args.verify) {
      const from = restored.output().length;
      if (spec.check === 'usr1') sysKill(pid, SIGUSR1);
      runs.verified = await waitForNew(restored, { pattern: spec.check === 'usr1' ? /PASS|FAIL/ : /mem=(PASS|FAIL)/, from, timeoutMs: 60000 });
    }
  } finally {
    if (restored) await drop(restored);
    await drop(v);
    rmDir(dir);
  }
}

const empty = (): TempRuns => ({ dump: [], frozen: [], restore: [], outside: [], fill: [], criuDump: [], criuRestore: [], verified: '' });

export async function runMem(spec: MemSpec, opts: { criu: boolean }): Promise<MemResult> {
  const res: MemResult = { spec, bytes: 0, byTemp: { cold: empty(), warm: empty() } };
  const criu = opts.criu ? criuBin() : undefined;
  if (!opts.criu) res.criuNote = 'CRIU: skipped (--no-criu)';
  else if (!criu) res.criuNote = 'CRIU: absent or `criu check` fails here';
  for (let rep = 0; rep < spec.reps; rep++) {
    // Alternate the order, so that neither temperature always runs first.
    const order = rep % 2 === 0 ? TEMPS : [...TEMPS].reverse();
    for (const temp of order) {
      process.stderr.write(`bench: ${spec.name} ${temp} ${rep + 1}/${spec.reps}\n`);
      await ckptCycle(spec, { temp, res, verify: rep < 2, phases: spec.phases && rep === 0 && temp === 'cold' && !res.phases });
      if (criu && !res.criuNote) {
        const c = await criuCycle(spec, { criu, temp, bytes: Math.max(spec.mib, 16) * MiB });
        if (typeof c === 'string') res.criuNote = `CRIU: ${c}`;
        else {
          res.byTemp[temp].criuDump.push(c.dump);
          res.byTemp[temp].criuRestore.push(c.restore);
        }
      }
    }
    if (spec.mib > 0) {
      const dir = shmDir('copy');
      const b = baselines(spec.mib, dir);
      rmDir(dir);
      for (const temp of TEMPS) {
        res.byTemp[temp].outside.push(b.outside[temp]);
        res.byTemp[temp].fill.push(b.fill[temp]);
      }
    }
  }
  return res;
}

export function reportMem(results: MemResult[]): void {
  console.log('\nimages in /dev/shm (tmpfs); fresh victim and fresh images per run; medians.');
  console.log(`cold: nothing allocated for ${COLD_MS / 1000} s before each step (freed memory went back to the host); warm: a tmpfs file of the victim's size written and removed just before.`);
  console.log('C outside copy: process_vm_readv into a 4 MiB buffer + write(2) to a new tmpfs file + fsync, one CPU; C fill: mmap fresh anonymous memory + pread the page file, one CPU (test/victims/bench-copy.c)\n');
  const rows: string[][] = [];
  for (const r of results) {
    for (const temp of TEMPS) {
      const t = r.byTemp[temp];
      const d = median(t.dump);
      const rs = median(t.restore);
      const o = median(t.outside);
      const fl = median(t.fill);
      rows.push([
        `${r.spec.name} ${temp} (n=${t.dump.length})`, `${f1(r.bytes / MiB)} MiB`, f1(d), f1(median(t.frozen)), f1(o), f2(d / o), f1(rs), f1(fl), f2(rs / fl), f1(median(t.criuDump)), f1(median(t.criuRestore)),
      ]);
    }
  }
  console.log(table(['case', 'pages', 'dump ms', 'frozen ms', 'C outside ms', 'dump/C', 'restore ms', 'C fill ms', 'restore/C', 'CRIU dump ms', 'CRIU restore ms'], rows));
  console.log('\ntargets (cold, 1 GiB): dump <= 1.0x the C outside copy; restore <= 1.2x the C fill');
  for (const r of results) {
    if (r.criuNote) console.log(`${r.spec.name}: ${r.criuNote}`);
    for (const temp of TEMPS) {
      const t = r.byTemp[temp];
      console.log(`${r.spec.name} ${temp}: restored process says ${t.verified || '-'}`);
      console.log(`  all runs: dump ${t.dump.map(f0).join(' ')}; restore ${t.restore.map(f0).join(' ')}; C outside ${t.outside.map(f0).join(' ')}; C fill ${t.fill.map(f0).join(' ')}; CRIU dump ${t.criuDump.map(f0).join(' ')}; CRIU restore ${t.criuRestore.map(f0).join(' ')} ms`);
    }
  }
  for (const r of results) {
    const p = r.phases;
    if (!p) continue;
    console.log(`\nphases, ${r.spec.name} (one run each, victim left running):`);
    console.log(table(['piece', 'ms'], [
      ['seize + release', f1(p.seizeRelease)],
      ['process_vm_readv into a 4 MiB buffer (no file)', f1(p.vmReadOnly)],
      ['process_vm_readv + writeSync 4 MiB + fsync (the old two-copy path)', f1(p.readWrite)],
      ['process_vm_readv into mmap of fallocated file (ckpt alone, dump, before h-speed)', f1(p.readIntoMmap)],
      ['pread into fresh anonymous memory (target alone, restore, before h-speed)', f1(p.preadFresh)],
    ]));
  }
}
