/**
 * The areas of an armed process at the freeze of a background dump, without reading
 * smaps while frozen (background.ts). smaps is the only file that shows an area's VmFlags,
 * and the kernel walks every page table entry of every area to count its Rss: ~15 ms for
 * 64 MiB, ~150 ms for 1 GiB on this machine, all of it frozen time growing with memory.
 *
 * So smaps is read once before the freeze (the tree running, its areas registered but
 * not yet write-protected: no writer waits meanwhile), and at the freeze only the layout
 * is read (/proc/PID/maps: no page walk, ~0.3 ms). An area whose maps line is the same as
 * before keeps the VmFlags read then. What can change an area's flags without changing
 * its maps line is a call of the process on the whole area (madvise, mlock, mseal…);
 * of those, mlock is checked: the mm's locked size (VmLck, kept exact by the kernel) must
 * be the sum of the areas flagged `lo`. An area unmapped and mapped again with the same
 * line is known by its unmap event (areas registered before: `replaced`). Any difference,
 * any area new or changed since, and smaps is read while frozen as before (`undefined`:
 * the caller reads it).
 *
 * Not seen: a call that changes the VmFlags of a whole area and another that changes them
 * back, one on each side of the freeze (madvise DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK,
 * DONTDUMP/DODUMP, HUGEPAGE/NOHUGEPAGE, MERGEABLE/UNMERGEABLE, SEQUENTIAL/RANDOM/NORMAL),
 * and a shared area (never registered, no event) unmapped and mapped again with the same
 * line between readFlags and the freeze: the flags saved are those of just before.
 *
 * mlockall(MCL_FUTURE) is learnt from the probe page (dump.ts, readAreas) without smaps
 * too: mapped under it, the probe is counted in VmLck, and populated at once unless
 * MCL_ONFAULT (the probe is mapped readable for that: the kernel populates no PROT_NONE
 * area).
 */
import { closeSync, readSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { openPagemap, readMaps, readStatus, type MapEntry, type SmapsEntry } from '../../proc/index.js';
import type { DumpContext } from '../types.js';
import { withProbePage } from './dump.js';
import type { MemoryState } from './state.js';

const PAGE = 4096n;
const PROT_READ = 1;

/** The mm's locked size (VmLck), in KiB. */
function lockedKiB(pid: number): number {
  const v = readStatus(pid).raw['VmLck'];
  if (v === undefined) throw new CkptError('INTERNAL', `Cannot dump process ${pid}: its status shows no VmLck`);
  return Number.parseInt(v, 10);
}

/** Whether the page at `at` of `pid` is present (pagemap bit 63). */
function present(pid: number, at: bigint): boolean {
  const fd = openPagemap(pid);
  try {
    const entry = Buffer.alloc(8);
    if (readSync(fd, entry, 0, 8, Number(at / PAGE) * 8) !== 8) return false;
    return (entry.readUInt32LE(4) & 0x80000000) !== 0;
  } finally {
    closeSync(fd);
  }
}

function sameLine(a: MapEntry, b: MapEntry): boolean {
  return a.start === b.start && a.end === b.end && a.prot.read === b.prot.read && a.prot.write === b.prot.write
    && a.prot.exec === b.prot.exec && a.shared === b.shared && a.offset === b.offset && a.dev.major === b.dev.major
    && a.dev.minor === b.dev.minor && a.inode === b.inode && a.path === b.path && a.deleted === b.deleted;
}

/**
 * The areas of frozen process ctx.pid with the VmFlags of `before` (its smaps read before
 * the freeze), and its mlockall(MCL_FUTURE) state; undefined when they cannot be trusted
 * (the caller reads smaps).
 */
export function areasWithFlagsBefore(ctx: DumpContext, args: { before: readonly SmapsEntry[]; replaced: readonly { start: bigint; end: bigint }[] }): { areas: SmapsEntry[]; lockFuture: MemoryState['lockFuture'] } | undefined {
  const { before, replaced } = args;
  const pid = ctx.pid;
  const locked = lockedKiB(pid);
  const { at, result } = withProbePage(ctx.remote, { pid, prot: PROT_READ }, (probe) => ({
    maps: readMaps(pid),
    locked: lockedKiB(pid),
    populated: present(pid, probe),
  }));
  const probe = result.maps.find((m) => m.start === at);
  if (!probe || probe.end !== at + PAGE) throw new CkptError('INTERNAL', `Cannot dump process ${pid}: its probe page at 0x${at.toString(16)} is not one area in maps`);
  const grew = result.locked - locked;
  if (grew !== 0 && grew !== Number(PAGE) / 1024) return undefined;
  const lockFuture: MemoryState['lockFuture'] = grew === 0 ? undefined : result.populated ? 'locked' : 'onfault';
  const byStart = new Map(before.map((e) => [e.start, e]));
  const areas: SmapsEntry[] = [];
  let lockedAreas = 0;
  for (const m of result.maps) {
    if (m === probe) continue;
    const b = byStart.get(m.start);
    if (!b || !sameLine(b, m) || replaced.some((r) => r.start < m.end && m.start < r.end)) return undefined;
    areas.push({ ...m, vmFlags: b.vmFlags });
    if (b.vmFlags.includes('lo')) lockedAreas += Number((m.end - m.start) / 1024n);
  }
  return lockedAreas === locked ? { areas, lockFuture } : undefined;
}
