/**
 * readMaps' filters answered by PROCMAP_QUERY (Linux 6.11+) where they can be: the area
 * containing an address is one lookup, a file's executable areas a walk over the
 * file-backed executable ones, the vDSO a lookup at the address auxv gives. Each full
 * read of /proc/PID/maps of a process with 10 000 areas costs its ~5 ms of kernel time
 * and a dump needs several (issue 13). On an older kernel (ENOTTY) or for what a query
 * cannot see (the [vsyscall] gate page), callers read the text as before.
 */
import { closeSync, openSync } from 'node:fs';
import { isErrno, PROCMAP, procmapQuery, SysError, type ProcmapArea } from '../sys/index.js';
import { parseAuxv, readAuxv } from './auxv.js';
import type { MapEntry, MapsFilter } from './maps.js';
import { procError, procPath } from './procfs.js';

const DELETED = ' (deleted)';
/** Above the user address space (x86_64, 4-level): only the [vsyscall] gate page, which queries do not see. */
const USER_TOP = 1n << 47n;
const AT_SYSINFO_EHDR = 33;

/** Cleared on the first ENOTTY: this kernel has no PROCMAP_QUERY. */
let supported = true;

function entryOf(q: ProcmapArea): MapEntry {
  // maps escapes a newline in a name as \012 (seq_file_path); the query gives it raw.
  let path = (q.name ?? '').replace(/\n/g, '\\012');
  const deleted = path.endsWith(DELETED);
  if (deleted) path = path.slice(0, -DELETED.length);
  return {
    start: q.start,
    end: q.end,
    prot: { read: (q.flags & PROCMAP.READABLE) !== 0, write: (q.flags & PROCMAP.WRITABLE) !== 0, exec: (q.flags & PROCMAP.EXECUTABLE) !== 0 },
    shared: (q.flags & PROCMAP.SHARED) !== 0,
    offset: q.offset,
    dev: q.dev,
    inode: q.inode,
    path,
    deleted,
  };
}

function vdsoAddress(pid: number): bigint | undefined {
  return parseAuxv(readAuxv(pid)).find((e) => e.type === AT_SYSINFO_EHDR)?.value;
}

/**
 * The areas readMaps(pid, filter) returns, found by queries; undefined when this filter
 * (or this kernel) needs the text. The caller applies the filter's conditions to the result.
 */
export function queryMaps(pid: number, filter: MapsFilter): MapEntry[] | undefined {
  if (!supported) return undefined;
  const { containing, path, exec, after, files } = filter;
  let plan: { addr: bigint; flags: number; walk: boolean } | undefined;
  if (after !== undefined) {
    // Past the user areas only the gate page is left, which a query does not see.
    if (after >= USER_TOP) return undefined;
    plan = { addr: after, flags: PROCMAP.COVERING_OR_NEXT, walk: false };
  } else if (containing !== undefined) {
    if (containing >= USER_TOP) return undefined;
    plan = { addr: containing, flags: 0, walk: false };
  } else if (exec && (files || path?.startsWith('/'))) {
    plan = { addr: 0n, flags: PROCMAP.COVERING_OR_NEXT | PROCMAP.FILE_BACKED | PROCMAP.READABLE | PROCMAP.EXECUTABLE, walk: true };
  } else if (path === '[vdso]') {
    // A lookup at the address the kernel gave the program; if the vDSO has moved since (a
    // restore in progress), the text says where it is.
    const at = vdsoAddress(pid);
    if (at === undefined) return undefined;
    plan = { addr: at, flags: 0, walk: false };
  } else {
    return undefined;
  }
  let fd: number;
  try {
    fd = openSync(procPath(pid, 'maps'), 'r');
  } catch (e) {
    throw procError(pid, 'maps', e);
  }
  const out: MapEntry[] = [];
  try {
    for (let addr = plan.addr; ;) {
      const q = procmapQuery(fd, { addr, flags: plan.flags, name: true, pid });
      if (q === undefined) break;
      out.push(entryOf(q));
      if (!plan.walk) break;
      addr = q.end;
    }
  } catch (e) {
    if (!(e instanceof SysError)) throw e;
    // No such ioctl here: the text from now on. Any other refusal: the text this time,
    // which says what is wrong (a process gone, no permission) as readMaps always did.
    if (isErrno(e, 'ENOTTY')) supported = false;
    return undefined;
  } finally {
    closeSync(fd);
  }
  if (path === '[vdso]' && !out.some((m) => m.path === '[vdso]')) return undefined;
  return out;
}
