/** `ckpt ps`: the process tree under a PID, as the dumper would see it. */
import { readFileSync } from 'node:fs';
import { CkptError, isCkptError } from '../common/errors.js';
import { isKernelThread, readChildren, readStat } from '../proc/index.js';

export interface ProcessNode {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  threads: number;
  /** State letter from /proc/PID/stat: R, S, D, T, t, Z … */
  state: string;
  /** argv joined by spaces, or [comm] when the process has no argv (exiting, zombie). */
  command: string;
  children: ProcessNode[];
}

function commandOf(pid: number, comm: string): string {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s, i, a) => s !== '' || i < a.length - 1);
    return argv.length > 0 ? argv.join(' ') : `[${comm}]`;
  } catch {
    return `[${comm}]`;
  }
}

function node(pid: number): ProcessNode {
  const st = readStat(pid);
  return {
    pid,
    ppid: st.ppid,
    pgid: st.pgrp,
    sid: st.session,
    threads: st.numThreads,
    state: st.state,
    command: commandOf(pid, st.comm),
    children: [],
  };
}

/** Throws the user-facing error when `pid` cannot be the root of a tree to inspect. */
export function inspectableRoot(pid: number): ProcessNode {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new CkptError('USAGE', `Cannot inspect process ${pid}: not a valid PID`);
  let root: ProcessNode;
  let kthread: boolean;
  try {
    const st = readStat(pid);
    kthread = isKernelThread(st);
    root = node(pid);
  } catch (e) {
    if (isCkptError(e, 'NO_PROCESS')) throw new CkptError('NO_PROCESS', `Cannot inspect process ${pid}: no such process`, { cause: e });
    throw e;
  }
  if (kthread) throw new CkptError('KERNEL_THREAD', `Cannot inspect process ${pid}: it is a kernel thread`);
  if (root.state === 'Z' || root.state === 'X') throw new CkptError('NO_PROCESS', `Cannot inspect process ${pid}: it has exited (zombie)`);
  return root;
}

/**
 * The tree under `pid` (children of every thread). A process that exits while we
 * walk is left out silently; only the root must exist.
 */
export function processTree(pid: number): ProcessNode {
  const root = inspectableRoot(pid);
  const walk = (n: ProcessNode): void => {
    let kids: number[];
    try {
      kids = readChildren(n.pid);
    } catch (e) {
      if (isCkptError(e, 'NO_PROCESS')) return;
      throw e;
    }
    for (const k of kids) {
      try {
        const c = node(k);
        n.children.push(c);
        walk(c);
      } catch (e) {
        if (!isCkptError(e, 'NO_PROCESS')) throw e;
      }
    }
  };
  walk(root);
  return root;
}

/** Every PID of the tree, root first (pre-order). */
export function treePids(root: ProcessNode): number[] {
  return [root.pid, ...root.children.flatMap(treePids)];
}
