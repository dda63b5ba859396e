/**
 * `npm run bench [-- --quick] [-- --reps N] [-- --no-cli] [-- --no-phases]`
 *
 * Dump and restore speed against the raw copy speed of this machine, measured in the
 * same run: for each case a fresh victim is dumped (in-process API, images in
 * /dev/shm) and restored, and a plain write/read of the same number of bytes to
 * /dev/shm gives the baseline. Prints medians and ratios; asserts nothing.
 * See docs/performance.md for what the numbers mean on these machines.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { dump } from '../src/dump/dump.js';
import { restore } from '../src/restore/restore.js';
import { kill as sysKill } from '../src/sys/index.js';
import { reapIfChild, startVictim, waitGone, wrapPid, type Victim } from '../test/helpers/victim.js';
import { measurePhases, type PhaseTimes } from './phases.js';

const ROOT = new URL('../', import.meta.url).pathname;
const SHM = '/dev/shm';
const CHUNK = 4 * 1024 * 1024;
const MiB = 1024 * 1024;
const SIGUSR1 = 10;

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const noCli = argv.includes('--no-cli');
const noPhases = argv.includes('--no-phases');
const repsArg = argv.indexOf('--reps');
const reps = (full: number) => (repsArg >= 0 ? Number(argv[repsArg + 1]) : quick ? 1 : full);

// ---- cleanup: every victim pid and every directory we make, even on error or ^C ----

const livePids = new Set<number>();
const liveDirs = new Set<string>();

function cleanupSync(): void {
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

function track(v: Victim): Victim {
  livePids.add(v.pid);
  liveDirs.add(v.dir);
  return v;
}

async function drop(v: Victim): Promise<void> {
  await v.cleanup();
  livePids.delete(v.pid);
  liveDirs.delete(v.dir);
}

function shmDir(tag: string): string {
  const d = fs.mkdtempSync(join(SHM, `ckpt-bench-${tag}-`));
  liveDirs.add(d);
  return d;
}

function rmDir(d: string): void {
  fs.rmSync(d, { recursive: true, force: true });
  liveDirs.delete(d);
}

// ---- measuring ----

function hrMs(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function rssKiB(pid: number): number {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) : NaN;
}

interface RawTimes {
  write: number;
  writeFsync: number;
  read: number;
}

/** Writes `bytes` to a new tmpfs file in 4 MiB writeSync calls (then fsync), reads it back, deletes it. */
function rawCopy(bytes: number, dir: string): RawTimes {
  const buf = Buffer.alloc(CHUNK, 0xa5);
  const file = join(dir, 'raw.bin');
  const fd = fs.openSync(file, 'wx', 0o600);
  const t0 = process.hrtime.bigint();
  for (let off = 0; off < bytes; off += CHUNK) {
    const n = Math.min(CHUNK, bytes - off);
    for (let o = 0; o < n;) o += fs.writeSync(fd, buf, o, n - o);
  }
  const t1 = process.hrtime.bigint();
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  const t2 = process.hrtime.bigint();
  const rfd = fs.openSync(file, 'r');
  const read = hrMs(() => {
    for (let off = 0; off < bytes; off += CHUNK) fs.readSync(rfd, buf, 0, Math.min(CHUNK, bytes - off), off);
  });
  fs.closeSync(rfd);
  fs.rmSync(file);
  return { write: Number(t1 - t0) / 1e6, writeFsync: Number(t2 - t0) / 1e6, read };
}

/** Waits for `pattern` in output the victim writes from now on. */
async function waitForNew(v: Victim, opts: { pattern: RegExp; from: number; timeoutMs?: number }): Promise<string> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20000);
  for (;;) {
    const m = v.output().slice(opts.from).match(opts.pattern);
    if (m) return m[0];
    if (Date.now() > deadline) throw new Error(`pid ${v.pid}: no ${opts.pattern} after restore; output:\n${v.output().slice(-500)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface CaseSpec {
  name: string;
  victim: string;
  args: string[];
  reps: number;
  /** bench-mem: SIGUSR1 makes it check its pattern; counter: it checks itself every TICK. */
  check: 'usr1' | 'tick';
  phases: boolean;
}

interface CaseResult {
  spec: CaseSpec;
  bytes: number;
  dump: number[];
  frozen: number[];
  restore: number[];
  raw: RawTimes[];
  rssBefore: number;
  rssAfter: number;
  verified: string;
  phases?: PhaseTimes;
}

async function runCase(spec: CaseSpec): Promise<CaseResult> {
  const res: CaseResult = { spec, bytes: 0, dump: [], frozen: [], restore: [], raw: [], rssBefore: NaN, rssAfter: NaN, verified: '' };
  for (let rep = 0; rep < spec.reps; rep++) {
    const v = track(startVictim(spec.victim, { args: spec.args }));
    let restored: Victim | undefined;
    const dir = shmDir('case');
    try {
      const ready = await v.waitFor(/READY pid=\d+.*\n/, 120000);
      if (spec.phases && rep === 0) {
        const addr = ready[0].match(/addr=(0x[0-9a-f]+)/);
        if (addr) res.phases = measurePhases({ pid: v.pid, addr: BigInt(addr[1]!), len: Number(spec.args[0]) * MiB }, dir);
      }
      const rssBefore = rssKiB(v.pid);
      const imagesDir = join(dir, 'img');
      let d: ReturnType<typeof dump> | undefined;
      const dumpMs = hrMs(() => {
        d = dump(v.pid, { imagesDir });
      });
      await waitGone(v.pid);
      livePids.delete(v.pid);
      // Baseline right here, twice: the first pass may pay for guest memory the host
      // has taken back (free page reporting, see docs/performance.md); keep the second.
      rawCopy(d!.bytes, dir);
      res.raw.push(rawCopy(d!.bytes, dir));
      let pid = 0;
      const restoreMs = hrMs(() => {
        pid = restore({ imagesDir }).pid;
      });
      restored = wrapPid(pid, v.dir, v.log);
      livePids.add(pid);
      res.bytes = d!.bytes;
      res.dump.push(dumpMs);
      res.frozen.push(d!.frozenMs);
      res.restore.push(restoreMs);
      if (rep === 0) {
        res.rssBefore = rssBefore;
        res.rssAfter = rssKiB(pid);
        const from = restored.output().length;
        if (spec.check === 'usr1') sysKill(pid, SIGUSR1);
        res.verified = await waitForNew(restored, { pattern: spec.check === 'usr1' ? /PASS|FAIL/ : /mem=(PASS|FAIL)/, from });
      }
    } finally {
      if (restored) await drop(restored);
      await drop(v);
      rmDir(dir);
    }
  }
  return res;
}

// ---- the CLI, as a user runs it ----

interface CliResult {
  note?: string;
  nodeStart: number[];
  version: number[];
  dump: number[];
  restore: number[];
  verified: string;
}

function cliAvailable(): string | undefined {
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, encoding: 'utf8' });
  if (!fs.existsSync(join(ROOT, 'dist/cli/main.js'))) return `skipped: build failed (${build.stdout.slice(0, 200)})`;
  const help = spawnSync('node', ['bin/ckpt.js', '--help'], { cwd: ROOT, encoding: 'utf8' });
  if (!/^\s+dump\b/m.test(help.stdout) || !/^\s+restore\b/m.test(help.stdout)) return 'skipped: the CLI has no dump/restore commands yet';
  return undefined;
}

function timedSpawn(args: string[]): { ms: number; status: number | null; out: string } {
  let r: ReturnType<typeof spawnSync> | undefined;
  const ms = hrMs(() => {
    r = spawnSync(args[0]!, args.slice(1), { cwd: ROOT, encoding: 'utf8' });
  });
  return { ms, status: r!.status, out: `${r!.stdout}${r!.stderr}` };
}

async function runCli(n: number): Promise<CliResult> {
  const res: CliResult = { nodeStart: [], version: [], dump: [], restore: [], verified: '' };
  res.note = cliAvailable();
  if (res.note) return res;
  for (let i = 0; i < n; i++) {
    res.nodeStart.push(timedSpawn(['node', '-e', '0']).ms);
    res.version.push(timedSpawn(['node', 'bin/ckpt.js', '--version']).ms);
  }
  for (let rep = 0; rep < n; rep++) {
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
      res.dump.push(d.ms);
      res.restore.push(r.ms);
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

const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : '-');

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => `| ${r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join(' | ')} |`;
  return [line(head), `|${w.map((n, i) => (i === 0 ? ` ${'-'.repeat(n)} ` : ` ${'-'.repeat(n - 1)}: `)).join('|')}|`, ...rows.map(line)].join('\n');
}

function report(cases: CaseResult[], cli: CliResult, totalMs: number): void {
  console.log(`\nckpt bench${quick ? ' (--quick)' : ''}: ${cpus().length} CPUs, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}, Node ${process.version}`);
  console.log('images and raw files in /dev/shm (tmpfs); medians; raw write includes fsync (the page writer fsyncs)\n');
  const rows = cases.map((c) => {
    const w = median(c.raw.map((r) => r.writeFsync));
    const r = median(c.raw.map((x) => x.read));
    const d = median(c.dump);
    const rs = median(c.restore);
    return [
      `${c.spec.name} (n=${c.dump.length})`, `${f1(c.bytes / MiB)} MiB`, f1(d), f1(median(c.frozen)), f1(w), f2(d / w), f1(rs), f1(r), f2(rs / r),
    ];
  });
  console.log(table(['case', 'pages', 'dump ms', 'frozen ms', 'raw write ms', 'dump/raw', 'restore ms', 'raw read ms', 'restore/raw'], rows));
  console.log('\ntargets: dump/raw <= 1.3x and restore/raw <= 1.5x for 1 GiB; small process < 60 ms CLI wall');
  const nofsync = cases.map((c) => `${c.spec.name}: ${f1(median(c.raw.map((r) => r.write)))} ms`).join(', ');
  console.log(`raw write without fsync: ${nofsync}`);
  for (const c of cases) {
    console.log(`${c.spec.name}: victim VmRSS ${f0(c.rssBefore / 1024)} MiB before dump, ${f0(c.rssAfter / 1024)} MiB after restore; restored process says ${c.verified}`);
    console.log(`  all runs: dump ${c.dump.map(f0).join(' ')} ms; restore ${c.restore.map(f0).join(' ')} ms; raw write ${c.raw.map((r) => f0(r.writeFsync)).join(' ')} ms`);
  }
  for (const c of cases) {
    const p = c.phases;
    if (!p) continue;
    console.log(`\nphases, ${c.spec.name} (one run each, victim left running):`);
    console.log(table(['piece', 'ms'], [
      ['seize + release', f1(p.seizeRelease)],
      ['process_vm_readv into a 4 MiB buffer (no file)', f1(p.vmReadOnly)],
      ['process_vm_readv + writeSync 4 MiB + fsync (= dump hot path)', f1(p.readWrite)],
      ['prototype: process_vm_readv into mmap of fallocated file', f1(p.readIntoMmap)],
      ['pread into fresh anonymous memory (= restore preadv)', f1(p.preadFresh)],
    ]));
  }
  console.log('\nCLI, small process (counter), wall time of the whole command:');
  if (cli.note) console.log(`  ${cli.note}`);
  else {
    console.log(table(['command', 'ms (median)', 'runs'], [
      ['node -e 0', f1(median(cli.nodeStart)), cli.nodeStart.map(f0).join(' ')],
      ['ckpt --version', f1(median(cli.version)), cli.version.map(f0).join(' ')],
      ['ckpt dump -t PID -D DIR', f1(median(cli.dump)), cli.dump.map(f0).join(' ')],
      ['ckpt restore -D DIR -d', f1(median(cli.restore)), cli.restore.map(f0).join(' ')],
    ]));
    console.log(`  restored process says ${cli.verified}`);
  }
  console.log(`\nbench took ${(totalMs / 1000).toFixed(1)} s`);
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const b = spawnSync('node', [join(ROOT, 'scripts/build-victims.mjs')], { stdio: 'inherit' });
  if (b.status !== 0) throw new Error('cannot build the victims');
  const specs: CaseSpec[] = [
    { name: 'small (counter)', victim: 'counter', args: [], reps: reps(5), check: 'tick', phases: false },
    { name: '256 MiB', victim: 'bench-mem', args: ['256'], reps: reps(3), check: 'usr1', phases: quick && !noPhases },
  ];
  if (!quick) specs.push({ name: '1 GiB', victim: 'bench-mem', args: ['1024'], reps: reps(3), check: 'usr1', phases: !noPhases });
  const cases: CaseResult[] = [];
  for (const s of specs) {
    process.stderr.write(`bench: ${s.name} x${s.reps}\n`);
    cases.push(await runCase(s));
  }
  process.stderr.write('bench: CLI\n');
  const cli: CliResult = noCli ? { note: 'skipped (--no-cli)', nodeStart: [], version: [], dump: [], restore: [], verified: '' } : await runCli(reps(5));
  report(cases, cli, performance.now() - t0);
}

try {
  await main();
} finally {
  cleanupSync();
}
