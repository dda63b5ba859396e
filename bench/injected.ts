/**
 * `node --import tsx bench/injected.ts VICTIM ARG` (e.g. `threads 1000`, `bench-tree 100`)
 *
 * Where the time of one dump and one restore goes: counts and times every syscall
 * injected into the targets (RemoteTask.raw, wrapped here; nothing in src/ changes)
 * and prints them by syscall, next to the wall time. Victims: threads, bench-tree,
 * bench-fork (all of whose processes print "PROC ... PID" lines) or any victim that
 * prints READY and is a single process.
 */
import { join } from 'node:path';
import { dump } from '../src/dump/dump.js';
import { restore } from '../src/restore/restore.js';
import { RemoteTask } from '../src/infect/index.js';
import { startVictim } from '../test/helpers/victim.js';
import { allGone, f1, hrMs, killAll, livePids, rmDir, shmDir, table, track } from './util.js';

const NAMES: Record<number, string> = {
  0: 'read', 1: 'write', 3: 'close', 8: 'lseek', 9: 'mmap', 10: 'mprotect', 11: 'munmap', 12: 'brk', 13: 'rt_sigaction', 14: 'rt_sigprocmask',
  28: 'madvise', 33: 'dup2', 36: 'getitimer', 38: 'setitimer', 72: 'fcntl', 131: 'sigaltstack', 157: 'prctl', 218: 'set_tid_address',
  25: 'mremap', 80: 'chdir', 95: 'umask', 135: 'personality', 257: 'openat', 273: 'set_robust_list', 292: 'dup3', 295: 'preadv', 302: 'prlimit64',
  334: 'rseq', 434: 'pidfd_open', 435: 'clone3', 436: 'close_range', 438: 'pidfd_getfd',
};

interface Count {
  n: number;
  ms: number;
  byNr: Map<number, { n: number; ms: number }>;
}

const count: Count = { n: 0, ms: 0, byNr: new Map() };
const raw = RemoteTask.prototype.raw;
RemoteTask.prototype.raw = function (this: RemoteTask, nr: number, args?: Parameters<typeof raw>[1]) {
  const t0 = performance.now();
  try {
    return raw.call(this, nr, args);
  } finally {
    const dt = performance.now() - t0;
    count.n++;
    count.ms += dt;
    const e = count.byNr.get(nr) ?? { n: 0, ms: 0 };
    e.n++;
    e.ms += dt;
    count.byNr.set(nr, e);
  }
};

function take(): Count {
  const c = { n: count.n, ms: count.ms, byNr: new Map(count.byNr) };
  count.n = 0;
  count.ms = 0;
  count.byNr.clear();
  return c;
}

function show(what: string, wall: number, c: Count): void {
  console.log(`\n${what}: ${f1(wall)} ms wall; ${c.n} injected syscalls took ${f1(c.ms)} ms (${f1((100 * c.ms) / wall)}%), ${(c.ms / Math.max(c.n, 1)).toFixed(3)} ms each`);
  const rows = [...c.byNr].sort((a, b) => b[1].ms - a[1].ms).map(([nr, e]) => [NAMES[nr] ?? `#${nr}`, String(e.n), f1(e.ms)]);
  console.log(table(['syscall', 'calls', 'ms'], rows));
}

const [victim = 'threads', arg = '1000'] = process.argv.slice(2);
const v = track(startVictim(victim, { args: [arg] }));
const dir = shmDir('injected');
let pids = [v.pid];
try {
  await v.waitFor(/READY pid=\d+.*\n/, 120000);
  const listed = [...v.output().matchAll(/PROC \S+ (\d+)/g)].map((m) => Number(m[1]));
  if (listed.length) pids = listed;
  for (const p of pids) livePids.add(p);
  const imagesDir = join(dir, 'img');
  const dumpMs = hrMs(() => void dump(v.pid, { imagesDir }));
  const d = take();
  await allGone(pids);
  const restoreMs = hrMs(() => void restore({ imagesDir }));
  for (const p of pids) livePids.add(p);
  const r = take();
  console.log(`${victim} ${arg}: ${pids.length} process(es)`);
  show('dump', dumpMs, d);
  show('restore', restoreMs, r);
} finally {
  await killAll(pids);
  await v.cleanup();
  rmDir(dir);
}
