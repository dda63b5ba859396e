/**
 * Fds that share one open file description (dup, dup2, fork-inherited 1 and 2 of
 * "cmd >log 2>&1") must stay shared after restore, or their offsets drift apart.
 * Candidates are grouped by inode first, so kcmp(KCMP_FILE) runs only between fds
 * on the same inode.
 */
import { kcmp } from '../../sys/index.js';
import type { FdFacts } from './facts.js';

export class DupFinder {
  private readonly byInode = new Map<string, number[]>();

  constructor(private readonly pid: number) {}

  /** The earliest fd seen so far on the same open file description as f, if any. */
  find(f: FdFacts): number | undefined {
    const same = this.byInode.get(key(f)) ?? [];
    return same.find((fd) => kcmp({ type: 'FILE', pid1: this.pid, pid2: this.pid, idx1: fd, idx2: f.fd }) === 0);
  }

  add(f: FdFacts): void {
    const k = key(f);
    const list = this.byInode.get(k);
    if (list) list.push(f.fd);
    else this.byInode.set(k, [f.fd]);
  }
}

function key(f: FdFacts): string {
  return `${f.stat.dev}:${f.stat.ino}`;
}
