/**
 * Runs restores of mutated image sets for test/e2e/fuzz-images.test.ts, one after the
 * other in this process (cheaper than a process each), and prints one line per
 * mutant: "START id", then "RESULT id {json}". The test kills this process when a
 * mutant takes too long and starts another one from the next mutant.
 *
 *   node --import tsx test/helpers/fuzz-worker.ts MANIFEST FIRST
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { isCkptError } from '../../src/common/errors.js';
import { restore } from '../../src/restore/restore.js';
import { sleepSync } from '../../src/infect/index.js';
import { kill, wait4, WAIT } from '../../src/sys/index.js';

export interface FuzzManifest {
  victimPid: number;
  victimLog: string;
  /** Length of the victim's log at dump: the restored victim writes on from there. */
  logLength: number;
  /** uid/gid lines of the victim's /proc status at dump. */
  uid: string;
  mutants: { id: number; dir: string }[];
}

export interface FuzzResult {
  id: number;
  outcome: 'refused' | 'restored';
  code?: string;
  message?: string;
  /** What a restored victim said of itself: PASS, FAIL, or nothing (crashed or silent). */
  check?: 'PASS' | 'FAIL' | 'none';
  /** A non-CkptError (with its stack). */
  foreign?: string;
  /** The restored process had other ids than the victim had at dump. */
  credsChanged?: string;
  leftovers: string[];
  imagesChanged: boolean;
  ms?: number;
}

function dirHash(dir: string): string {
  const h = createHash('sha256');
  for (const f of readdirSync(dir).sort()) h.update(f).update('\0').update(readFileSync(join(dir, f)));
  return h.digest('hex');
}

function ids(pid: number): string {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  return (s.match(/^(Uid|Gid|CapEff):.*$/gm) ?? []).join('; ');
}

/** Our children (the blank, a restored root) and the victim's PID, while they exist. */
function leftovers(pid: number): string[] {
  const out: string[] = [];
  const deadline = Date.now() + 3000;
  for (;;) {
    out.length = 0;
    try {
      wait4(-1, WAIT.ALL | WAIT.NOHANG); // reap what died
    } catch {
      // no children
    }
    for (const e of readdirSync('/proc')) {
      if (!/^\d+$/.test(e)) continue;
      try {
        const s = readFileSync(`/proc/${e}/status`, 'utf8');
        const name = /^Name:\s*(.*)$/m.exec(s)?.[1];
        const ppid = Number(/^PPid:\s*(\d+)/m.exec(s)?.[1]);
        // tsx's esbuild service is our child too, and stays.
        if (Number(e) === pid || (ppid === process.pid && name !== 'esbuild')) out.push(`${e} (${name})`);
      } catch {
        // gone
      }
    }
    if (out.length === 0 || Date.now() > deadline) return out;
    sleepSync(10);
  }
}

function waitCheck(m: FuzzManifest): 'PASS' | 'FAIL' | 'none' {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const text = readFileSync(m.victimLog, 'utf8').slice(m.logLength);
    const tick = /TICK .* mem=(PASS|FAIL)/.exec(text);
    if (tick) return tick[1] as 'PASS' | 'FAIL';
    if (!existsSync(`/proc/${m.victimPid}`)) break;
    sleepSync(20);
  }
  return 'none';
}

function runOne(m: FuzzManifest, mutant: { id: number; dir: string }): FuzzResult {
  const before = dirHash(mutant.dir);
  truncateSync(m.victimLog, m.logLength);
  const r: FuzzResult = { id: mutant.id, outcome: 'refused', leftovers: [], imagesChanged: false };
  try {
    const res = restore({ imagesDir: mutant.dir, verifyPages: true });
    r.outcome = 'restored';
    try {
      const now = ids(res.pid);
      if (now !== m.uid) r.credsChanged = now;
    } catch {
      // died at once: the check says none
    }
    r.check = waitCheck(m);
    try {
      kill(res.pid, 9);
    } catch {
      // already dead
    }
  } catch (e) {
    if (isCkptError(e)) {
      r.code = e.code;
      r.message = e.message;
    } else {
      r.foreign = e instanceof Error ? (e.stack ?? e.message) : String(e);
    }
  }
  r.leftovers = leftovers(m.victimPid);
  for (const l of r.leftovers) {
    try {
      kill(Number(l.split(' ')[0]), 9);
    } catch {
      // gone
    }
  }
  r.imagesChanged = dirHash(mutant.dir) !== before;
  return r;
}

const [manifestPath, first] = process.argv.slice(2);
const manifest = JSON.parse(readFileSync(manifestPath!, 'utf8')) as FuzzManifest;
for (const mutant of manifest.mutants.slice(Number(first ?? 0))) {
  process.stdout.write(`START ${mutant.id}\n`);
  const t0 = performance.now();
  const result = runOne(manifest, mutant);
  result.ms = Math.round(performance.now() - t0);
  process.stdout.write(`RESULT ${mutant.id} ${JSON.stringify(result)}\n`);
}
// leftovers() reaps our children with wait4, behind the back of the ChildProcess handle
// that started the blank: Node would wait for that exit forever.
process.exit(0);
