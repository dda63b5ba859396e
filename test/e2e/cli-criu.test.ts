/**
 * ckpt as a drop-in for CRIU's command line: command lines from CRIU's docs and common
 * scripts run unchanged against the counter victim (which checks its own memory on
 * every TICK), CRIU's work-directory rules, the replacement of an earlier set, action
 * scripts, --config, -s, the refused options and commands, and that every option of
 * CRIU 4.2 (`criu --help`, criu(8)) is known to each command.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { buildCli } from '../helpers/bundle.js';
import { buildProgram } from '../../src/cli/program.js';
import { CRIU_OPTIONS } from '../../src/cli/criu-options.js';

const root = new URL('../..', import.meta.url).pathname;
const cleanups = useCleanups();
const tmp = () => cleanups.tempDir('ckpt-criu-');

// The bundle, built aside once (test/helpers/bundle.ts): many runs, each a fraction of tsx's start-up.
let cli: string | undefined;
function ckpt(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  cli ??= buildCli(cleanups);
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, CKPT_CODE_CACHE: '0' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const ticks = (v: Victim) => [...v.output().matchAll(/^TICK pid=\d+ counter=(\d+) mem=(\w+)$/gm)].map((m) => ({ counter: Number(m[1]), mem: m[2] }));

async function ticksAtLeast(v: Victim, n: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (ticks(v).length < n) {
    if (Date.now() > deadline) throw new Error(`victim ${v.pid}: fewer than ${n} TICK lines:\n${v.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function counter(): Promise<Victim> {
  const v = startVictim('counter');
  cleanups.push(() => v.cleanup());
  await ticksAtLeast(v, 2);
  return v;
}

/** The restored counter goes on counting from where it was, its memory intact. */
async function countsOn(v: Victim): Promise<void> {
  const before = ticks(v);
  const restored = wrapPid(v.pid, v.dir, v.log);
  cleanups.push(() => restored.kill());
  await ticksAtLeast(restored, before.length + 3);
  const now = ticks(v).slice(before.length);
  assert.ok(now[0]!.counter > before.at(-1)!.counter, 'the counter went on');
  assert.ok(now.every((t) => t.mem === 'PASS'), v.output());
}

// Every option of CRIU 4.2's dump, pre-dump and restore (criu --help, Documentation/criu.txt).
const CRIU_DUMP_RESTORE = [
  '--tree', '--restore-detached', '--restore-sibling', '--leave-stopped', '--leave-running', '--images-dir', '--pidfile', '--work-dir',
  '--cpu-cap', '--exec-cmd', '--freeze-cgroup', '--weak-sysctls', '--lazy-pages', '--stream', '--mntns-compat-mode', '--network-lock',
  '--unprivileged', '--allow-uprobes', '--external', '--tcp-established', '--skip-in-flight', '--tcp-close', '--root', '--evasive-devices',
  '--link-remap', '--ghost-limit', '--ghost-fiemap', '--action-script', '--shell-job', '--file-locks', '--libdir', '--timeout',
  '--force-irmap', '--irmap-scan-path', '--manage-cgroups', '--cgroup-root', '--cgroup-props', '--cgroup-props-file',
  '--cgroup-dump-controller', '--cgroup-yard', '--lsm-profile', '--lsm-mount-context', '--skip-mnt', '--enable-fs', '--inherit-fd',
  '--empty-ns', '--join-ns', '--file-validation', '--skip-file-rwx-check', '--log-file', '--log-pid', '--verbosity', '--display-stats',
  '--track-mem', '--prev-images-dir', '--page-server', '--auto-dedup', '--pre-dump-mode', '--address', '--port', '--ps-socket',
  '--tls-cacert', '--tls-cacrl', '--tls-cert', '--tls-key', '--tls', '--tls-no-cn-verify', '--config', '--no-default-config',
  '--ext-unix-sk', '--veth-pair', '--ext-mount-map', '--enable-external-sharing', '--enable-external-masters', '--close', '--deprecated',
];
const CRIU_SHORT = ['-t', '-d', '-S', '-s', '-R', '-D', '-W', '-r', '-j', '-l', '-L', '-o', '-v', '-J', '-M', '-x'];
const CRIU_CHECK = ['--extra', '--experimental', '--all', '--feature', '--config', '--no-default-config'];

test('every CRIU option of dump, restore and check is known to ckpt, and listed in docs/cli.md', () => {
  const program = buildProgram();
  const docs = readFileSync(join(root, 'docs/cli.md'), 'utf8');
  const known = (cmd: string) => {
    const c = program.commands.find((x) => x.name() === cmd)!;
    return new Set(c.options.flatMap((o) => [o.long, o.short]));
  };
  for (const cmd of ['dump', 'restore']) {
    const k = known(cmd);
    for (const o of [...CRIU_DUMP_RESTORE, ...CRIU_SHORT]) assert.ok(k.has(o), `${cmd} ${o} unknown`);
  }
  const k = known('check');
  for (const o of CRIU_CHECK) assert.ok(k.has(o), `check ${o} unknown`);
  for (const o of CRIU_DUMP_RESTORE) assert.match(docs, new RegExp(`(\`|\`-\\w, |/)${o}\\b`), `${o} is not in docs/cli.md`);
  for (const o of CRIU_OPTIONS) assert.ok(docs.includes(o.flags.replace(/^-\w, /, '').split(' ')[0]!), `${o.flags} is not in docs/cli.md`);
});

test('CRIU\'s command lines: dump -j -v4 -o dump.log --tcp-established, restore -d -j --pidfile -vvvv; logs and pidfile in the images dir', async () => {
  const v = await counter();
  const images = join(tmp(), 'images');
  const d = ckpt('dump', '-t', String(v.pid), '-D', images, '-j', '-v4', '-o', 'dump.log', '--tcp-established', '--file-locks', '--link-remap', '--skip-in-flight');
  assert.equal(d.status, 0, d.stderr);
  await waitGone(v.pid);
  // -o is relative to the work dir, the images dir by default; -v4 stamps every line with the time since start.
  const log = readFileSync(join(images, 'dump.log'), 'utf8');
  for (const line of log.trimEnd().split('\n')) assert.match(line, /^\(\d\d\.\d{6}\) /, line);
  assert.match(log, new RegExp(`froze 1 process\\(es\\) \\(${v.pid}\\) in \\d+ ms`));
  assert.match(log, new RegExp(`saved pid ${v.pid}: \\d+ pages`));
  assert.match(log, /images committed/);
  assert.match(log, new RegExp(`dumped pid ${v.pid}: `));
  assert.equal(d.stderr, log, 'at -v4, stderr has what the log has');

  const r = ckpt('restore', '-d', '-D', images, '-j', '--pidfile', 'restore.pid', '-vvvv', '-o', 'restore.log', '--tcp-established');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(Number(readFileSync(join(images, 'restore.pid'), 'utf8').trim()), v.pid);
  const rlog = readFileSync(join(images, 'restore.log'), 'utf8');
  assert.match(rlog, /read the images of 1 process/);
  assert.match(rlog, new RegExp(`rebuilt pid ${v.pid}`));
  assert.match(rlog, new RegExp(`restored pid ${v.pid}: \\d+ pages`));
  await countsOn(v);
});

test('a dump into an earlier set replaces it whole; -W moves the log; --display-stats and --json; a bare -v', async () => {
  const v = await counter();
  const base = tmp();
  const images = join(base, 'images');
  const work = join(base, 'work');
  const first = ckpt('dump', '-t', String(v.pid), '-D', images, '-R', '-v', '0');
  assert.equal(first.status, 0, first.stderr);
  const oldInventory = readFileSync(join(images, 'inventory.img'));
  writeFileSync(join(images, 'old.log'), 'from before\n');
  mkdirSync(work);
  const d = ckpt('dump', '--tree', String(v.pid), '--images-dir', images, '-W', work, '-o', 'dump.log', '-v', '--display-stats', '--json');
  assert.equal(d.status, 0, d.stderr);
  await waitGone(v.pid);
  assert.ok(!readFileSync(join(images, 'inventory.img')).equals(oldInventory), 'a new set');
  assert.ok(!existsSync(join(images, 'old.log')), 'the old directory went with the old set');
  assert.deepEqual(readdirSync(base).sort(), ['images', 'work'], 'nothing left beside the images dir');
  assert.match(readFileSync(join(work, 'dump.log'), 'utf8'), /dumped pid/);
  assert.match(d.stderr, /^\(\d\d\.\d{6}\) froze 1 process/m, 'a bare -v is level 3');
  const [stats, json] = [d.stdout.slice(0, d.stdout.indexOf('{')), d.stdout.slice(d.stdout.indexOf('{'))];
  assert.match(stats, /^Displaying dump stats:\nFreezing time: \d+ us\nFrozen time: \d+ us\nMemory dump time: \d+ us\n/);
  assert.match(stats, /^Memory pages written: \d+ \(0x[0-9a-f]+\)$/m);
  const result = JSON.parse(json) as { pid: number; pids: number[]; pages: number; bytes: number; frozenMs: number; totalMs: number; warnings: string[]; imagesDir: string };
  assert.equal(result.pid, v.pid);
  assert.deepEqual(result.pids, [v.pid]);
  assert.ok(result.pages > 256 && result.bytes === result.pages * 4096);
  assert.equal(result.imagesDir, images);

  const r = ckpt('restore', '-D', images, '-d', '--json', '--display-stats', '--progress', 'json', '-t', String(v.pid), '--manage-cgroups=ignore');
  assert.equal(r.status, 0, r.stderr);
  // Machine-readable progress: JSON lines on stderr, the last one with every page restored.
  const progress = r.stderr.trimEnd().split('\n').map((l) => JSON.parse(l) as { progress: string; bytes: number; total: number });
  assert.ok(progress.length > 0 && progress.every((p) => p.progress === 'restore'), r.stderr);
  assert.deepEqual([progress.at(-1)!.bytes, progress.at(-1)!.total], [result.bytes, result.bytes]);
  assert.match(r.stdout, /^Displaying restore stats:\nPages restored: \d+ \(0x[0-9a-f]+\)\n/);
  const rr = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { pid: number; pages: number };
  assert.equal(rr.pid, v.pid);
  assert.equal(rr.pages, result.pages);
  await countsOn(v);
});

test('a non-empty directory that is not a checkpoint is refused, and left alone', async () => {
  const v = await counter();
  const dir = tmp();
  writeFileSync(join(dir, 'precious.txt'), 'keep me\n');
  const d = ckpt('dump', '-t', String(v.pid), '-D', dir);
  assert.equal(d.status, 2);
  assert.match(d.stderr, /^ckpt: Cannot dump into .*: it is not empty and it holds no ckpt image set/);
  assert.deepEqual(readdirSync(dir), ['precious.txt']);
  assert.deepEqual(readdirSync(dirname(dir)).filter((n) => n.includes('ckpt-new')), []);
  assert.ok(v.alive());
});

test('--action-script runs at each of CRIU\'s points with CRTOOLS_SCRIPT_ACTION and CRTOOLS_INIT_PID; --config; -s at dump and restore', async () => {
  const v = await counter();
  const base = tmp();
  const images = join(base, 'images');
  const trace = join(base, 'trace');
  const script = join(base, 'script.sh');
  writeFileSync(script, `#!/bin/sh\necho "$CRTOOLS_SCRIPT_ACTION \${CRTOOLS_INIT_PID:--} $(basename "$CRTOOLS_IMAGE_DIR")" >> ${trace}\n`, { mode: 0o755 });
  const config = join(base, 'criu.conf');
  writeFileSync(config, `# CRIU's format\ntcp-established\nshell-job   # a comment\naction-script "${script}"\nrestore-detached\n`);
  const d = ckpt('dump', '--config', config, '-t', String(v.pid), '-D', images, '-s');
  assert.equal(d.status, 0, d.stderr);
  // -s: left stopped, not killed.
  const stopped = async () => {
    const deadline = Date.now() + 5000;
    while (readFileSync(`/proc/${v.pid}/stat`, 'utf8').split(') ')[1]![0] !== 'T') {
      if (Date.now() > deadline) throw new Error(`pid ${v.pid} is not stopped`);
      await new Promise((res) => setTimeout(res, 10));
    }
  };
  await stopped();
  process.kill(v.pid, 'SIGKILL');
  await waitGone(v.pid);
  const r = ckpt('restore', '--config', config, '-D', images, '--leave-stopped');
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(readFileSync(trace, 'utf8').trimEnd().split('\n'), [
    'pre-dump - images',
    `post-dump ${v.pid} images`,
    'pre-restore - images',
    `post-restore ${v.pid} images`,
    `pre-resume ${v.pid} images`,
    `post-resume ${v.pid} images`,
  ]);
  await stopped(); // restored stopped
  const seen = ticks(v).length;
  await new Promise((res) => setTimeout(res, 200));
  assert.equal(ticks(v).length, seen, 'no TICK while stopped');
  process.kill(v.pid, 'SIGCONT');
  await countsOn(v);
});

test('a failing pre-dump action script fails the dump: the target runs on, no images', async () => {
  const v = await counter();
  const images = join(tmp(), 'images');
  const d = ckpt('dump', '-t', String(v.pid), '-D', images, '--action-script', 'exit 3');
  assert.equal(d.status, 1);
  assert.match(d.stderr, /^ckpt: Cannot run action script exit 3 \(pre-dump\): exit status 3\n$/);
  assert.equal(existsSync(join(images, 'inventory.img')), false);
  const seen = ticks(v).length;
  await ticksAtLeast(v, seen + 2);
});

test('CRIU\'s iterative lines: pre-dump, pre-dump --prev-images-dir ../p1 --track-mem, dump --prev-images-dir ../p2 --track-mem; show names the parent', async () => {
  const v = await counter();
  const base = tmp();
  const run = (...args: string[]) => {
    const r = ckpt(...args);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  assert.match(run('pre-dump', '-t', String(v.pid), '-D', join(base, 'p1')).stderr, /^pre-dumped pid \d+: \d+ pages/);
  run('pre-dump', '-t', String(v.pid), '-D', join(base, 'p2'), '--prev-images-dir', '../p1', '--track-mem');
  run('dump', '-t', String(v.pid), '-D', join(base, 'final'), '--prev-images-dir', '../p2', '--track-mem', '-j');
  await waitGone(v.pid);
  assert.match(run('show', join(base, 'final')).stdout, /incremental: dumped against \.\.\/p2 .*\n(.*\n)*.*unchanged pages in the parent images/);
  assert.match(run('show', join(base, 'p2')).stdout, /pre-dumped .*\n.*dumped against \.\.\/p1/);
  const r = ckpt('restore', '-d', '-D', join(base, 'p2'));
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /is a pre-dump/);
  run('restore', '-d', '-D', join(base, 'final'));
  await countsOn(v);
});

test('refused options and commands say why, before touching the target; never "unknown option"', async () => {
  const v = await counter();
  const images = join(tmp(), 'images');
  const cases: [string[], RegExp][] = [
    [['dump', '-t', String(v.pid), '-D', images, '--lazy-pages'], /^ckpt: Cannot dump with --lazy-pages: a dump for a lazy restore is a plain dump/],
    [['dump', '-t', String(v.pid), '-D', images, '--external', 'mnt[/data]:data'], /^ckpt: Cannot dump with --external: mnt\[…\]: mounts are not supported/],
    [['dump', '-t', String(v.pid), '-D', images, '--page-server', '--address', '127.0.0.1', '--port', '1234', '--tls'], /^ckpt: Cannot dump with --tls: ckpt's page server authenticates with a shared token file/],
    [['dump', '-t', String(v.pid), '-D', images, '--manage-cgroups=full'], /^ckpt: Cannot dump with --manage-cgroups: cgroup properties \(limits, controllers\) are not saved/],
    [['restore', '-D', images, '--exec-cmd', '--', '/bin/true'], /^ckpt: Cannot restore with --exec-cmd: /],
    [['dump', '-t', String(v.pid), '-D', images, '--auto-dedup'], /^ckpt: Cannot dump with --auto-dedup: deduplication of parent images is not supported/],
    [['lazy-pages', '-D', images], /^ckpt: Cannot run lazy-pages: restore --lazy-pages starts it/],
  ];
  for (const [args, want] of cases) {
    const r = ckpt(...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, want);
    assert.doesNotMatch(r.stderr, /unknown/);
  }
  assert.equal(existsSync(images), false);
  const seen = ticks(v).length;
  await ticksAtLeast(v, seen + 2);
  assert.ok(ticks(v).every((t) => t.mem === 'PASS'));
});

test('check --feature list, a CRIU feature name, --all', () => {
  const list = ckpt('check', '--feature', 'list');
  assert.equal(list.status, 0, list.stderr);
  assert.match(list.stdout, /^ptrace .*clone3_set_tid.* uffd /);
  const uffd = ckpt('check', '--feature', 'uffd');
  assert.equal(uffd.status, 0, uffd.stderr);
  assert.match(uffd.stdout, /^ok\s+userfaultfd\s/m);
  const all = ckpt('check', '--all');
  assert.equal(all.status, 1, 'root here lacks CAP_SYS_RESOURCE: an optional feature is missing');
  assert.match(all.stdout, /^Looks good but cap_sys_resource missing/m);
  const criuOnly = ckpt('check', '--feature', 'mem_dirty_track');
  assert.equal(criuOnly.status, 2);
  assert.match(criuOnly.stderr, /CRIU's feature, which ckpt does not use/);
});
