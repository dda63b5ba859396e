import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { reapIfChild, startVictim, waitGone, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const cleanups = useCleanups();

function ckpt(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A failed command: non-zero exit, exactly one line on stderr, no stack trace. */
function assertOneLineError(r: { code: number | null; err: string }, pattern: RegExp): void {
  assert.notEqual(r.code, 0);
  const lines = r.err.trimEnd().split('\n');
  assert.equal(lines.length, 1, r.err);
  assert.doesNotMatch(r.err, /^\s+at /m);
  assert.match(lines[0] as string, pattern);
}

interface Truth {
  root: number;
  procs: { pid: number; ppid: number; pgid: number; sid: number; threads: number }[];
  groups: { kind: string; pids: number[] }[];
  files: string[][];
}

function parseTruth(out: string): Truth {
  const t: Truth = { root: 0, procs: [], groups: [], files: [] };
  for (const line of out.split('\n')) {
    const w = line.split(' ');
    if (w[0] !== 'TRUTH') continue;
    const nums = w.slice(2).map(Number);
    if (w[1] === 'root') t.root = nums[0] as number;
    else if (w[1] === 'proc') {
      const [pid, ppid, pgid, sid, threads] = nums as [number, number, number, number, number];
      t.procs.push({ pid, ppid, pgid, sid, threads });
    } else if (w[1] === 'file') t.files.push(w.slice(2).sort());
    else t.groups.push({ kind: w[1] as string, pids: nums.sort((a, b) => a - b) });
  }
  return t;
}

interface Node { pid: number; ppid: number; pgid: number; sid: number; threads: number; state: string; command: string; children: Node[] }
const flatten = (n: Node): Node[] => [n, ...n.children.flatMap(flatten)];

let victim: Victim;
let truth: Truth;

before(async () => {
  victim = startVictim('sharing-tree');
  cleanups.push(async () => {
    await victim.cleanup();
    // The children die with their parent (PDEATHSIG) and are reparented to us: reap them.
    for (const p of truth?.procs ?? []) await waitGone(p.pid);
  });
  await victim.waitFor(/^READY$/m);
  assert.doesNotMatch(victim.output(), /FAIL/);
  truth = parseTruth(victim.output());
});

test('ps --json shows the tree with pids, ppids, pgid, sid and thread counts', () => {
  const r = ckpt('ps', String(truth.root), '--json');
  assert.equal(r.code, 0, r.err);
  const tree = JSON.parse(r.out) as Node;
  const got = flatten(tree).map(({ pid, ppid, pgid, sid, threads }) => ({ pid, ppid: pid === truth.root ? -1 : ppid, pgid, sid, threads }));
  const byPid = (a: { pid: number }, b: { pid: number }) => a.pid - b.pid;
  assert.deepEqual(got.sort(byPid), [...truth.procs].sort(byPid));
  assert.equal(tree.pid, truth.root);
  for (const n of flatten(tree)) assert.match(n.command, /sharing-tree/);
});

test('ps (human) prints an indented tree', () => {
  const r = ckpt('ps', String(truth.root));
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.match(lines[0] as string, /^PID\s+PPID\s+PGID\s+SID\s+THR\s+S\s+COMMAND$/);
  assert.equal(lines.length, 1 + truth.procs.length);
  const grandchild = truth.procs.find((p) => p.ppid !== truth.root && p.pid !== truth.root);
  assert.ok(grandchild);
  assert.match(r.out, new RegExp(`^${grandchild.pid}\\s.*  \\\\_ \\S*sharing-tree$`, 'm'));
});

test('sharing --json finds exactly the sharing the victim set up, in O(N log N) kcmp calls', () => {
  const r = ckpt('sharing', String(truth.root), '--json');
  assert.equal(r.code, 0, r.err);
  const rep = JSON.parse(r.out) as {
    pids: number[];
    groups: { kind: string; pids: number[] }[];
    files: { path: string; fds: { pid: number; fd: number }[] }[];
    items: { processes: number; fds: number };
    kcmpCalls: number;
  };
  assert.deepEqual(rep.pids, truth.procs.map((p) => p.pid).sort((a, b) => a - b));
  const key = (g: { kind: string; pids: number[] }) => `${g.kind} ${g.pids.join(' ')}`;
  assert.deepEqual(rep.groups.map(key).sort(), truth.groups.map(key).sort());
  // fds 0-2 are the launcher's (/dev/null, the log) and shared by everyone: compare fds >= 3 only.
  const files = rep.files.filter((f) => f.fds.some((x) => x.fd >= 3));
  assert.deepEqual(files.map((f) => f.fds.map((x) => `${x.pid}:${x.fd}`).sort()), truth.files);
  assert.match(files[0]?.path ?? '', /\/shared-a$/);
  // Six sorts of N processes (+1 sentinel) and one of the fds: c·M·log2(M) with c = 2.
  const m = 6 * (rep.items.processes + 1) + rep.items.fds;
  assert.ok(rep.kcmpCalls > 0 && rep.kcmpCalls <= 2 * m * Math.log2(m), `${rep.kcmpCalls} kcmp calls for ${m} items`);
});

test('sharing (human) lists the groups and the call count', () => {
  const r = ckpt('sharing', String(truth.root));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`^files: ${truth.groups.find((g) => g.kind === 'files')?.pids.join(' ')}$`, 'm'));
  assert.match(r.out, /^file: .*fd3.*\/shared-a\)$/m);
  assert.match(r.out, /^\d+ processes, \d+ fds, \d+ kcmp calls$/m);
});

test('ps of a PID that does not exist: one-line error, exit 1', () => {
  const r = ckpt('ps', '999999999');
  assert.equal(r.code, 1);
  assertOneLineError(r, /^ckpt: Cannot inspect process 999999999: no such process$/);
});

test('ps of a kernel thread (kthreadd): one-line error, exit 1', () => {
  const st = readFileSync('/proc/2/stat', 'utf8');
  assert.match(st, /\(kthreadd\)/, 'PID 2 is expected to be kthreadd here');
  const r = ckpt('ps', '2');
  assert.equal(r.code, 1);
  assertOneLineError(r, /^ckpt: Cannot inspect process 2: it is a kernel thread$/);
});

test('bad PIDs are usage errors (exit 2)', () => {
  const r = ckpt('ps', 'abc');
  assert.equal(r.code, 2);
  assertOneLineError(r, /^ckpt: .*abc.*not a PID/);
  assert.equal(ckpt('sharing').code, 2);
});

test('sharing of a process that has exited: one-line error', async () => {
  const quick = startVictim('/bin/true');
  // Wait until it is a zombie (our child through the subreaper) or gone; do not reap yet.
  const deadline = Date.now() + 5000;
  const state = () => (existsSync(`/proc/${quick.pid}/stat`) ? readFileSync(`/proc/${quick.pid}/stat`, 'utf8').split(') ')[1]?.[0] : undefined);
  while (state() !== undefined && state() !== 'Z' && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
  try {
    const r = ckpt('sharing', String(quick.pid), String(truth.root));
    assertOneLineError(r, new RegExp(`^ckpt: Cannot inspect process ${quick.pid}: (no such process|it has exited \\(zombie\\))$`));
    reapIfChild(quick.pid);
    const gone = ckpt('sharing', String(quick.pid));
    assertOneLineError(gone, new RegExp(`^ckpt: Cannot inspect process ${quick.pid}: no such process$`));
  } finally {
    await quick.cleanup();
  }
});
