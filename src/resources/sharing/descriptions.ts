/**
 * Tree-wide identities of open file descriptions: fds of any processes that are the
 * same description (inherited across fork, passed, dup'ed) get the same id. Found by
 * sorting every fd with kcmp(KCMP_FILE) as the order: O(N log N) kcmp calls.
 */
import { isErrno, kcmp } from '../../sys/index.js';
import { listFds, readFdLink } from '../../proc/index.js';
import { groupByOrder, ItemGone } from './group.js';

interface FdRef {
  pid: number;
  fd: number;
}

export type DescriptionIds = Map<number, Map<number, number>>;

export function descriptionIds(pids: readonly number[]): DescriptionIds {
  const items: FdRef[] = pids.flatMap((pid) => listFds(pid).map((fd) => ({ pid, fd })));
  const { groups } = groupByOrder(items, (a, b) => {
    try {
      return kcmp({ type: 'FILE', pid1: a.pid, pid2: b.pid, idx1: a.fd, idx2: b.fd });
    } catch (e) {
      // An fd closed under us cannot happen in a stopped tree, but a bad fd must not crash the sort.
      if (isErrno(e, 'EBADF')) throw new ItemGone(isErrno(e, 'EBADF') ? a : b, 'fd closed');
      throw e;
    }
  });
  const ids: DescriptionIds = new Map(pids.map((p) => [p, new Map()]));
  groups.forEach((g, id) => {
    for (const ref of g) ids.get(ref.pid)!.set(ref.fd, id + 1);
  });
  return ids;
}

/** Calls `fn` with every fd of these processes and its link (an fd closed meanwhile is skipped). */
export function forEachFdLink(pids: Iterable<number>, fn: (ref: FdRef & { link: string }) => void): void {
  for (const pid of pids) {
    for (const fd of listFds(pid)) {
      let link: string;
      try {
        link = readFdLink(pid, fd);
      } catch {
        continue;
      }
      fn({ pid, fd, link });
    }
  }
}

/** How many fds of these processes point at each link (pipe:[ino], socket:[ino], paths). */
export function linkCounts(pids: readonly number[]): Map<string, number> {
  const counts = new Map<string, number>();
  forEachFdLink(pids, ({ link }) => counts.set(link, (counts.get(link) ?? 0) + 1));
  return counts;
}
