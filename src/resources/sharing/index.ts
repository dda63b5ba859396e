/**
 * Which kernel objects do processes share? For each kind kcmp knows (memory, fd
 * table, fs info, signal handlers, io context, SysV undo list) and for each open
 * file description, items are grouped by kcmp's order (see group.ts).
 */
import { existsSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { listFds, readFdLink, readStat } from '../../proc/index.js';
import { isErrno, kcmp, type KcmpType } from '../../sys/index.js';
import { groupByOrder, ItemGone, type Order } from './group.js';
import { Sentinel } from './sentinel.js';

export const PROCESS_KINDS = ['vm', 'files', 'fs', 'sighand', 'io', 'sysvsem'] as const;
export type ProcessKind = (typeof PROCESS_KINDS)[number];

/** Kinds whose kernel pointer is NULL until first use, so "no object" compares equal across processes. */
const NULLABLE: ReadonlySet<ProcessKind> = new Set(['io', 'sysvsem']);

export interface FdRef {
  pid: number;
  fd: number;
}

export interface SharingReport {
  /** Processes compared, ascending (those that exited during the scan are left out). */
  pids: number[];
  /** Processes that had exited (zombies) or exited during the scan. */
  vanished: number[];
  /** Processes sharing one object of a kind; only groups of two or more. */
  groups: { kind: ProcessKind; pids: number[] }[];
  /** Fds that are one open file description; only groups of two or more. */
  files: { path: string; fds: FdRef[] }[];
  /** How many items were sorted: for checking that kcmpCalls is O(N log N). */
  items: { processes: number; fds: number };
  kcmpCalls: number;
}

export function isAlive(pid: number): boolean {
  try {
    const s = readStat(pid).state;
    return s !== 'Z' && s !== 'X';
  } catch {
    return false;
  }
}

function processCompare(kind: ProcessKind) {
  const type = kind.toUpperCase() as KcmpType;
  return (a: number, b: number): Order => {
    try {
      return kcmp({ type, pid1: a, pid2: b });
    } catch (e) {
      if (!isErrno(e, 'ESRCH')) throw e;
      const gone = !isAlive(a) ? a : !isAlive(b) ? b : undefined;
      if (gone === undefined) throw e;
      throw new ItemGone(gone, `process ${gone} exited`);
    }
  };
}

function fileCompare(a: FdRef, b: FdRef): Order {
  try {
    return kcmp({ type: 'FILE', pid1: a.pid, pid2: b.pid, idx1: a.fd, idx2: b.fd });
  } catch (e) {
    if (!isErrno(e, 'ESRCH') && !isErrno(e, 'EBADF')) throw e;
    const there = (r: FdRef) => isAlive(r.pid) && existsSync(`/proc/${r.pid}/fd/${r.fd}`);
    const gone = !there(a) ? a : !there(b) ? b : undefined;
    if (gone === undefined) throw e;
    throw new ItemGone(gone, `fd ${gone.fd} of process ${gone.pid} is gone`);
  }
}

const byPid = (a: number, b: number) => a - b;
const cmpFd = (a: FdRef, b: FdRef) => a.pid - b.pid || a.fd - b.fd;

/** Finds what the given processes (not threads: pass thread group leaders) share. */
export function findSharing(pids: readonly number[]): SharingReport {
  let live = [...new Set(pids)].filter(isAlive).sort(byPid);
  const vanished = new Set(pids.filter((p) => !live.includes(p)));
  let calls = 0;
  const groups: SharingReport['groups'] = [];
  const filesGroups: number[][] = [];
  const sentinel = live.length > 1 ? new Sentinel() : undefined;
  try {
    for (const kind of PROCESS_KINDS) {
      const withSentinel = NULLABLE.has(kind) && sentinel ? [...live, sentinel.pid] : live;
      const g = groupByOrder(withSentinel, processCompare(kind), { stillThere: isAlive });
      calls += g.calls;
      if (sentinel && g.gone.includes(sentinel.pid)) throw new CkptError('INTERNAL', 'Cannot compare with the sentinel process: it exited');
      for (const p of g.gone) vanished.add(p);
      live = live.filter((p) => !vanished.has(p));
      for (const members of g.groups) {
        const real = members.filter((p) => !vanished.has(p));
        if (kind === 'files') filesGroups.push(real);
        if (sentinel && members.includes(sentinel.pid)) continue;
        if (real.length > 1) groups.push({ kind, pids: real.sort(byPid) });
      }
    }
  } finally {
    sentinel?.dispose();
  }
  if (live.length === 0) throw new CkptError('NO_PROCESS', `Cannot find shared resources: every process (${pids.join(', ')}) exited`);

  // One fd table per FILES group is enough: the others hold the very same fds.
  const tables = filesGroups.map((g) => g.filter((p) => live.includes(p))).filter((g) => g.length > 0);
  const fdItems: FdRef[] = [];
  for (const table of tables) {
    const rep = table[0] as number;
    try {
      for (const fd of listFds(rep)) fdItems.push({ pid: rep, fd });
    } catch (e) {
      if (!(e instanceof CkptError && e.code === 'NO_PROCESS')) throw e;
    }
  }
  const f = groupByOrder(fdItems, fileCompare, { stillThere: (r) => isAlive(r.pid) });
  calls += f.calls;
  const files: SharingReport['files'] = [];
  for (const members of f.groups) {
    const fds = members.flatMap((r) => (tables.find((t) => t[0] === r.pid) ?? [r.pid]).map((pid) => ({ pid, fd: r.fd })));
    if (fds.length < 2) continue;
    fds.sort(cmpFd);
    files.push({ path: linkOf(members[0] as FdRef), fds });
  }
  files.sort((a, b) => cmpFd(a.fds[0] as FdRef, b.fds[0] as FdRef));
  for (const r of f.gone) if (!isAlive(r.pid)) vanished.add(r.pid);
  live = live.filter((p) => !vanished.has(p));
  return {
    pids: live,
    vanished: [...vanished].sort(byPid),
    groups: groups.map((g) => ({ kind: g.kind, pids: g.pids.filter((p) => !vanished.has(p)) })).filter((g) => g.pids.length > 1),
    files: files.map((x) => ({ ...x, fds: x.fds.filter((r) => !vanished.has(r.pid)) })).filter((x) => x.fds.length > 1),
    items: { processes: live.length, fds: fdItems.length },
    kcmpCalls: calls,
  };
}

function linkOf(r: FdRef): string {
  try {
    return readFdLink(r.pid, r.fd);
  } catch {
    return '?';
  }
}
