/**
 * `ckpt migrate` of a process with a big memory and a small working set, between two
 * network namespaces on this machine (A and B, one veth pair), next to a plain dump and
 * restore of the same kind of process in the same run. The victim is
 * test/victims/bench-mem (MiB of memory, a working set rewritten every ~20 ms: `bench-mem MiB HOT`); source and
 * destination are the built CLI (`ckpt migrate`, `ckpt migrate --receive` in a PID
 * namespace of its own, images in /dev/shm), each migration once with a full restore on
 * the destination, once with --lazy-pages and once with --post-copy (the final dirty pages
 * left on the source, read by the lazy restore there). The migrated copy checks all its memory
 * (PASS/FAIL) before it is killed.
 *
 * "final freeze": from the source's freeze for the final dump to the destination's tree
 * let go (the source's time to GO plus the destination's GO to let-go, both reported by
 * `ckpt migrate --json`), with its parts. "plain": dump (killing it) then restore, the
 * process stopped from the dump's freeze to the restore's let-go (the dump's frozen time
 * plus the restore to let-go; the wait for the PID to be free in between left out).
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump } from '../src/dump/dump.js';
import { restore } from '../src/restore/restore.js';
import { kill as sysKill } from '../src/sys/index.js';
import { startVictim, VICTIM_BIN, waitGone, type Victim } from '../test/helpers/victim.js';
import { f0, f1, killAll, livePids, median, rmDir, shmDir, SIGUSR1, table, track, waitForNew } from './util.js';

const ROOT = new URL('../', import.meta.url).pathname;
const tag = (process.pid % 10000).toString();
const NS = { a: `ckbA${tag}`, b: `ckbB${tag}` };

export interface MigrateRow {
  name: string;
  rounds: string;
  finalPages: number[];
  freeze: number[];
  collect: number[];
  memory: number[];
  restore: number[];
  kill: number[];
  run: number[];
  verified: string[];
}

export interface MigrateBench {
  rows: MigrateRow[];
  plain: { freeze: number[]; dump: number[]; restore: number[]; verified: string[] };
  mib: number;
  hot: number;
}

function sh(cmd: string[]): void {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
}

function network(): () => void {
  const del = () => {
    for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns]);
  };
  for (const ns of Object.values(NS)) {
    sh(['ip', 'netns', 'add', ns]);
    sh(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  }
  sh(['ip', 'link', 'add', `a0b${tag}`, 'netns', NS.a, 'type', 'veth', 'peer', 'name', `b0b${tag}`, 'netns', NS.b]);
  for (const [ns, dev, ip] of [[NS.a, `a0b${tag}`, '10.78.0.1'], [NS.b, `b0b${tag}`, '10.78.0.2']] as const) {
    sh(['ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', `${ip}/24`, 'dev', dev]);
    sh(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', dev, 'up']);
  }
  return del;
}

/** The copy of `pid` in another PID namespace (the destination's), by its NSpid. */
function copyOf(pid: number): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === pid) continue;
    try {
      const ns = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'))?.[1]?.trim().split(/\s+/).map(Number);
      if (ns && ns.length > 1 && ns.at(-1) === pid && readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'bench-mem') return Number(d);
    } catch {
      // gone
    }
  }
  return undefined;
}

async function verify(v: Victim, pid: number): Promise<string> {
  const from = v.output().length;
  sysKill(pid, SIGUSR1);
  return (await waitForNew(v, { pattern: /PASS|FAIL/, from, timeoutMs: 60_000 })).slice(0, 4);
}

interface SourceJson {
  rounds: { pages: number }[];
  final: { pages: number; freezeMs: number; parts: { collectMs: number; memoryMs: number; scriptMs: number; restoreMs: number; killMs: number; runMs?: number } };
}

async function migrateOnce(args: { mib: number; hot: number; lazy: boolean; postCopy?: boolean; token: string }): Promise<{ out: SourceJson; verified: string }> {
  const v = track(startVictim('/usr/bin/nsenter', { args: [`--net=/run/netns/${NS.a}`, join(VICTIM_BIN, 'bench-mem'), String(args.mib), String(args.hot)] }));
  await v.waitFor(/READY/, 120_000);
  const dir = shmDir('migrate-dst');
  const cli = [process.execPath, join(ROOT, 'bin/ckpt.js')];
  const recvCmd = [...cli, 'migrate', '--receive', '-D', dir, '--address', '10.78.0.2', '--port', '0', '--auth-token', args.token, '-v3', ...(args.lazy ? ['--lazy-pages'] : [])];
  const quoted = recvCmd.map((c) => `'${c}'`).join(' ');
  const recv = spawn('ip', ['netns', 'exec', NS.b, 'unshare', '--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', `${quoted}; echo "receiver exit $?" >&2; exec sleep 100000`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  recv.stderr!.setEncoding('utf8');
  const port = await new Promise<number>((res, rej) => {
    recv.stderr!.on('data', (d: string) => {
      err += d;
      const m = /listening on [0-9.]+:(\d+)/.exec(err);
      if (m) res(Number(m[1]));
    });
    recv.on('exit', () => rej(new Error(`receiver exited: ${err}`)));
  });
  try {
    // The source's work directory in /dev/shm, as the destination's: with --post-copy the final set is written (and fsync'd) there during the freeze.
    const work = join(shmDir('migrate-src'), 'work');
    const src = spawnSync('nsenter', [`--net=/run/netns/${NS.a}`, ...cli, 'migrate', '-D', work, '-t', String(v.pid), '--to', `10.78.0.2:${port}`, '--auth-token', args.token, '--json', ...(args.postCopy ? ['--post-copy'] : [])], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (src.status !== 0) throw new Error(`migrate failed: ${src.stderr}\nreceiver: ${err}`);
    await waitGone(v.pid, 30_000);
    livePids.delete(v.pid);
    const copy = copyOf(v.pid);
    const verified = copy === undefined ? 'no copy' : await verify(v, copy);
    return { out: JSON.parse(src.stdout) as SourceJson, verified };
  } finally {
    recv.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 200));
    rmDir(dir);
  }
}

async function plainOnce(args: { mib: number; hot: number }): Promise<{ freeze: number; dump: number; restore: number; verified: string }> {
  const v = track(startVictim('bench-mem', { args: [String(args.mib), String(args.hot)] }));
  await v.waitFor(/READY/, 120_000);
  const dir = shmDir('migrate-plain');
  try {
    const d = dump(v.pid, { imagesDir: dir });
    await waitGone(v.pid);
    let letGo = 0;
    const t0 = performance.now();
    const r = restore({ imagesDir: dir, check: false, onEvent: (e) => void (e.phase === 'let-go' && (letGo = performance.now())) });
    const restoreMs = letGo - t0;
    const verified = await verify(v, r.pid);
    await killAll([r.pid]);
    return { freeze: d.frozenMs + restoreMs, dump: d.frozenMs, restore: restoreMs, verified };
  } finally {
    rmDir(dir);
  }
}

export async function runMigrate(opts: { reps: number; mib: number; hot: number }): Promise<MigrateBench | undefined> {
  if (!existsSync(join(ROOT, 'dist/cli/main.js'))) {
    console.log('\nmigrate: skipped: run `npm run build` first (the built CLI runs both sides)');
    return undefined;
  }
  const dropNetwork = network();
  const tokenDir = shmDir('migrate-token');
  const token = join(tokenDir, 'token');
  writeFileSync(token, randomBytes(32), { mode: 0o600 });
  const cases = [{ lazy: false, postCopy: false }, { lazy: true, postCopy: false }, { lazy: true, postCopy: true }];
  const rows: MigrateRow[] = cases.map((c) => ({
    name: `migrate, ${c.postCopy ? 'post-copy, ' : ''}${c.lazy ? 'lazy' : 'full'} restore there`, rounds: '', finalPages: [], freeze: [], collect: [], memory: [], restore: [], kill: [], run: [], verified: [],
  }));
  const plain: MigrateBench['plain'] = { freeze: [], dump: [], restore: [], verified: [] };
  try {
    for (let i = 0; i < opts.reps; i++) {
      for (const [k, c] of cases.entries()) {
        const { out, verified } = await migrateOnce({ ...opts, ...c, token });
        const row = rows[k]!;
        const p = out.final.parts;
        row.rounds = out.rounds.map((r) => r.pages).join(', ');
        row.finalPages.push(out.final.pages);
        row.freeze.push(out.final.freezeMs);
        row.collect.push(p.collectMs);
        row.memory.push(p.memoryMs);
        row.restore.push(p.restoreMs);
        row.kill.push(p.killMs);
        row.run.push(p.runMs ?? NaN);
        row.verified.push(verified);
      }
      const pl = await plainOnce(opts);
      plain.freeze.push(pl.freeze);
      plain.dump.push(pl.dump);
      plain.restore.push(pl.restore);
      plain.verified.push(pl.verified);
    }
  } finally {
    dropNetwork();
    rmDir(tokenDir);
  }
  return { rows, plain, mib: opts.mib, hot: opts.hot };
}

export function reportMigrate(b: MigrateBench): void {
  console.log(`\nmigrate: ${b.mib} MiB, a ${b.hot} MiB working set rewritten every ~20 ms, netns A -> B (medians; parts of the final freeze, see bench/migrate.ts):`);
  console.log(table(['case', 'pre-copy rounds (pages)', 'final pages', 'final freeze ms', '= dump ms', '+ pages ms', '+ restore there ms', '+ kill here ms', '+ let go there ms', 'memory check'], [
    ...b.rows.map((r) => [r.name, r.rounds, f0(median(r.finalPages)), f1(median(r.freeze)), f1(median(r.collect)), f1(median(r.memory)), f1(median(r.restore)), f1(median(r.kill)), f1(median(r.run)), r.verified.join(' ')]),
    ['plain dump + restore (same host)', '-', '-', f1(median(b.plain.freeze)), f1(median(b.plain.dump)), '-', f1(median(b.plain.restore)), '-', '-', b.plain.verified.join(' ')],
  ]));
  console.log('target (issue 14): final freeze <= 50 ms for 1 GiB with a 16 MiB working set');
}
