/**
 * Processes forked from lazily restored ones: the fork event gives the child's
 * userfaultfd but not its pid, so the pid is found among the parent's children once the
 * fork is done; and the guard, when the server dies, kills what is below the processes
 * it knows.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The live children of `pid` (every thread's /proc/PID/task/TID/children), ascending. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out; // gone
  }
  for (const tid of tids) {
    let kids = '';
    try {
      kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const k of kids.split(' ')) if (/^\d+$/.test(k)) out.push(Number(k));
  }
  return out.sort((a, b) => a - b);
}

/** `pids` and every live process below them. */
export function withDescendants(pids: readonly number[]): number[] {
  const seen = new Set<number>();
  const walk = (pid: number): void => {
    if (seen.has(pid)) return;
    seen.add(pid);
    for (const c of childrenOf(pid)) walk(c);
  };
  for (const p of pids) walk(p);
  return [...seen];
}

/** How long a forked child's pid is looked for (a fork that failed after its event has none). */
const FIND_MS = 1000;

/** A process forked from `parent` (-1: whose own pid is not known yet), its pid not known yet. */
export interface Unnamed {
  parent: number;
  since: number;
}

/**
 * Names what it can of `unnamed` (oldest first) with children of their parents that are
 * in no `known` pid; returns [index in unnamed, pid] pairs, and gives up (pid -1) on
 * those looked for too long.
 */
export function nameChildren(unnamed: readonly Unnamed[], known: ReadonlySet<number>): [number, number][] {
  const out: [number, number][] = [];
  const taken = new Set(known);
  const now = performance.now();
  const kids = new Map<number, number[]>();
  unnamed.forEach((u, i) => {
    if (u.parent <= 0 && now - u.since <= FIND_MS) return; // its parent is named first
    if (!kids.has(u.parent)) kids.set(u.parent, u.parent > 0 ? childrenOf(u.parent) : []);
    const pid = kids.get(u.parent)!.find((c) => !taken.has(c));
    if (pid !== undefined) {
      taken.add(pid);
      out.push([i, pid]);
    } else if (now - u.since > FIND_MS) {
      out.push([i, -1]);
    }
  });
  return out;
}
