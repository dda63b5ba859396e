/**
 * `npm run bench [-- --quick] [-- --reps N] [-- --no-cli] [-- --no-phases] [-- --no-criu] [-- --only mem,cli,threads,tree,cow,check,maps,shm,lazy,background,migrate]`
 *
 * Sections: mem (bench/mem.ts), cli (below), threads (bench/threads.ts), tree
 * (bench/tree.ts), cow (bench/cow.ts), check (bench/check.ts), maps (bench/maps.ts), shm
 * (bench/shm.ts), lazy (bench/lazy.ts), background (bench/background.ts) and migrate
 * (bench/migrate.ts);
 * all run by default, `--only` picks some, `--no-SECTION` drops one.
 *
 * Dump and restore speed against what one-CPU C programs do with the same bytes on
 * fresh memory in the same run, cold and warm (bench/mem.ts), and against CRIU when
 * it runs here (`--no-criu` to skip it). Prints medians and ratios; asserts nothing.
 * See docs/performance.md for what the numbers mean on these machines.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { startVictim, VICTIM_BIN, waitGone, wrapPid, type Victim } from '../test/helpers/victim.js';
import { reportMem, runMem, type MemResult, type MemSpec } from './mem.js';
import { reportMaps, runMaps, type MapsRow } from './maps.js';
import { reportShm, runShm, type ShmResult } from './shm.js';
import { reportCow, runCow, type CowResult } from './cow.js';
import { reportCheck, runCheck, type CheckRow } from './check.js';
import { reportLazy, runLazy, type LazyRow } from './lazy.js';
import { reportBackground, runBackground, type BackgroundRow } from './background.js';
import { reportMigrate, runMigrate, type MigrateBench } from './migrate.js';
import { reportThreads, runThreads, type ThreadsRow } from './threads.js';
import { reportTree, runTree, type TreeRow } from './tree.js';
import { cleanupSync, drop, f0, f1, livePids, median, rmDir, shmDir, table, track, waitForNew } from './util.js';

const ROOT = new URL('../', import.meta.url).pathname;

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const noCli = argv.includes('--no-cli');
const noPhases = argv.includes('--no-phases');
const noCriu = argv.includes('--no-criu');
const repsArg = argv.indexOf('--reps');
const reps = (full: number) => (repsArg >= 0 ? Number(argv[repsArg + 1]) : quick ? 1 : full);
/** Sections: mem (small, 256 MiB, 1 GiB), cli, threads, tree, cow, check, maps, shm, lazy, background, migrate; `--only a,b` runs those alone. */
const SECTIONS = ['mem', 'cli', 'threads', 'tree', 'cow', 'check', 'maps', 'shm', 'lazy', 'background', 'migrate'] as const;
type Section = (typeof SECTIONS)[number];
const onlyArg = argv.indexOf('--only');
const only = onlyArg >= 0 ? (argv[onlyArg + 1] ?? '').split(',').filter(Boolean) : [...SECTIONS];
for (const o of only) if (!(SECTIONS as readonly string[]).includes(o)) throw new Error(`--only: unknown section ${o} (one of ${SECTIONS.join(', ')})`);
const want = (s: Section) => only.includes(s) && !argv.includes(`--no-${s}`);

// ---- the CLI, as a user runs it ----

interface CliResult {
  note?: string;
  nodeStart: Timed[];
  version: Timed[];
  dump: Timed[];
  restore: Timed[];
  verified: string;
}

function cliAvailable(): string | undefined {
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (!fs.existsSync(join(ROOT, 'dist/cli/main.js'))) return `skipped: build failed (${build.stdout.slice(0, 200)})`;
  const help = spawnSync('node', ['bin/ckpt.js', '--help'], { cwd: ROOT, encoding: 'utf8' });
  if (!/^\s+dump\b/m.test(help.stdout) || !/^\s+restore\b/m.test(help.stdout)) return 'skipped: the CLI has no dump/restore commands yet';
  return undefined;
}

/** Wall and CPU time (user + system, from wait4: test/victims/bench-rusage.c) of a command. */
interface Timed {
  ms: number;
  cpuMs: number;
}

function timedSpawn(args: string[]): Timed & { status: number | null; out: string } {
  const r = spawnSync(join(VICTIM_BIN, 'bench-rusage'), args, { cwd: ROOT, encoding: 'utf8' });
  const m = /RUSAGE cpu=(\S+) wall=(\S+)\n$/.exec(r.stderr ?? '');
  if (!m) throw new Error(`bench-rusage ${args.join(' ')}: ${r.error?.message ?? r.stderr}`);
  return { ms: Number(m[2]), cpuMs: Number(m[1]), status: r.status, out: `${r.stdout}${r.stderr.slice(0, m.index)}` };
}

async function runCli(n: number): Promise<CliResult> {
  const res: CliResult = { nodeStart: [], version: [], dump: [], restore: [], verified: '' };
  res.note = cliAvailable();
  if (res.note) return res;
  // Each repetition times node -e 0 right before the commands it is compared with.
  for (let rep = 0; rep < n; rep++) {
    res.nodeStart.push(timedSpawn(['node', '-e', '0']));
    res.version.push(timedSpawn(['node', 'bin/ckpt.js', '--version']));
    const v = track(startVictim('counter'));
    let restored: Victim | undefined;
    const dir = shmDir('cli');
    try {
      await v.waitFor(/READY/);
      const imagesDir = join(dir, 'img');
      const d = timedSpawn(['node', 'bin/ckpt.js', 'dump', '-t', String(v.pid), '-D', imagesDir]);
      if (d.status !== 0) throw new Error(`ckpt dump exited ${d.status}: ${d.out}`);
      await waitGone(v.pid);
      livePids.delete(v.pid);
      const from = v.output().length;
      const r = timedSpawn(['node', 'bin/ckpt.js', 'restore', '-D', imagesDir, '-d']);
      if (r.status !== 0) throw new Error(`ckpt restore exited ${r.status}: ${r.out}`);
      // Same PID (clone3 set_tid); -d leaves it to the nearest subreaper: us.
      restored = wrapPid(v.pid, v.dir, v.log);
      livePids.add(v.pid);
      res.dump.push(d);
      res.restore.push(r);
      if (rep === 0) res.verified = await waitForNew(restored, { pattern: /mem=(PASS|FAIL)/, from });
    } finally {
      if (restored) await drop(restored);
      await drop(v);
      rmDir(dir);
    }
  }
  return res;
}

// ---- output ----

function uptime(): string {
  return spawnSync('uptime', { encoding: 'utf8' }).stdout.trim();
}

interface Results {
  cases: MemResult[];
  cli?: CliResult;
  threads?: ThreadsRow[];
  tree?: TreeRow[];
  cow?: CowResult;
  check?: CheckRow[];
  maps?: MapsRow[];
  shm?: ShmResult;
  lazy?: LazyRow[];
  background?: BackgroundRow[];
  migrate?: MigrateBench;
  loadBefore: string;
  totalMs: number;
}

function report(res: Results): void {
  console.log(`\nckpt bench${quick ? ' (--quick)' : ''} [${only.filter((o) => want(o as Section)).join(', ')}]: ${cpus().length} CPUs, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}, Node ${process.version}`);
  console.log(`load before: ${res.loadBefore}`);
  if (res.cases.length) reportMem(res.cases);
  if (res.cli) reportCli(res.cli);
  if (res.threads) reportThreads(res.threads);
  if (res.tree) reportTree(res.tree);
  if (res.cow) reportCow(res.cow);
  if (res.check) reportCheck(res.check);
  if (res.maps) reportMaps(res.maps);
  if (res.shm) reportShm(res.shm);
  if (res.lazy) reportLazy(res.lazy);
  if (res.background) reportBackground(res.background);
  if (res.migrate) reportMigrate(res.migrate);
  console.log(`\nload after: ${uptime()}`);
  console.log(`bench took ${(res.totalMs / 1000).toFixed(1)} s`);
}

function reportCli(cli: CliResult): void {
  console.log('\nCLI, small process (counter): wall and CPU time (user + system, wait4) of the whole command, and each against node -e 0 (target: dump and restore <= 1.5x):');
  if (cli.note) console.log(`  ${cli.note}`);
  else {
    const wall = median(cli.nodeStart.map((t) => t.ms));
    const cpu = median(cli.nodeStart.map((t) => t.cpuMs));
    const row = (name: string, ts: Timed[]) => {
      const w = median(ts.map((t) => t.ms));
      const c = median(ts.map((t) => t.cpuMs));
      return [name, f1(w), `${(w / wall).toFixed(2)}x`, f1(c), `${(c / cpu).toFixed(2)}x`, ts.map((t) => f0(t.cpuMs)).join(' ')];
    };
    console.log(table(['command', 'wall ms (median)', 'wall / node', 'CPU ms (median)', 'CPU / node', 'CPU ms, runs'], [
      row('node -e 0', cli.nodeStart),
      row('ckpt --version', cli.version),
      row('ckpt dump -t PID -D DIR', cli.dump),
      row('ckpt restore -D DIR -d', cli.restore),
    ]));
    console.log(`  restored process says ${cli.verified}`);
  }
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const loadBefore = uptime();
  const b = spawnSync('node', [join(ROOT, 'scripts/build-victims.mjs')], { stdio: 'inherit' });
  if (b.status !== 0) throw new Error('cannot build the victims');
  const res: Results = { cases: [], loadBefore, totalMs: 0 };
  if (want('mem')) {
    const specs: MemSpec[] = [
      { name: 'small (counter)', victim: 'counter', args: [], mib: 0, reps: reps(3), check: 'tick', phases: false },
      { name: '256 MiB', victim: 'bench-mem', args: ['256'], mib: 256, reps: reps(3), check: 'usr1', phases: quick && !noPhases },
    ];
    if (!quick) specs.push({ name: '1 GiB', victim: 'bench-mem', args: ['1024'], mib: 1024, reps: reps(3), check: 'usr1', phases: !noPhases });
    for (const s of specs) res.cases.push(await runMem(s, { criu: !noCriu }));
  }
  if (want('cli')) {
    process.stderr.write('bench: CLI\n');
    res.cli = noCli ? { note: 'skipped (--no-cli)', nodeStart: [], version: [], dump: [], restore: [], verified: '' } : await runCli(reps(5));
  }
  if (want('threads')) res.threads = await runThreads({ reps: reps(3), counts: quick ? [1, 100] : [1, 8, 100, 1000] });
  if (want('tree')) res.tree = await runTree({ reps: reps(3), sizes: [1, 100] });
  if (want('cow')) res.cow = await runCow({ reps: reps(3), mib: quick ? 128 : 512, kids: 4 });
  if (want('check')) res.check = await runCheck({ reps: reps(5) });
  if (want('maps')) res.maps = await runMaps({ n: quick ? 3000 : 10000, reps: reps(3) });
  if (want('shm')) res.shm = await runShm({ mib: 64, reps: reps(3) });
  if (want('lazy')) res.lazy = await runLazy({ reps: reps(3), sizes: quick ? [256] : [256, 1024] });
  if (want('background')) res.background = await runBackground({ reps: reps(3), sizes: quick ? [256] : [256, 1024] });
  if (want('migrate')) res.migrate = await runMigrate({ reps: reps(1), mib: quick ? 256 : 1024, hot: 16 });
  res.totalMs = performance.now() - t0;
  report(res);
}

try {
  await main();
} finally {
  cleanupSync();
}
