/**
 * Dumping memory: the layout from smaps, the mm fields from stat and auxv, and the
 * contents of every page that holds state, read with process_vm_readv in large
 * chunks (falling back to /proc/PID/mem, which can read PROT_NONE and exec-only
 * areas) and appended to the page file.
 */
import { closeSync, readlinkSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { NR } from '../../sys/index.js';
import { guardRanges, openPagemap, PAGEMAP_WINDOW, PagemapReader, populatedWindows, readAuxv, readMaps, readSmaps, readStat, type SmapsEntry } from '../../proc/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { DumpContext } from '../types.js';
import { identify } from './files.js';
import { pagemapWords, runsIn } from './pages.js';
import { copyPages, type PageRun, type PageSink } from './copy.js';
import { CowFilter, type ParentMemory } from './cow.js';
import { ShmemTable, shmemKindOf } from './shmem.js';
import { takeUnwritten } from './dirty.js';
import type { AddressRange, ProcessTracker } from './track.js';
import { hasOwnPages, isShmemArea, type MappedFile, type MemoryState, type Vma } from './state.js';
import { builtAreas, MAX_GUARDS } from './vmas.js';

const PAGE = 4096;
/** A background dump plans areas smaller than this at the freeze (dumpPages). */
const LAZY_MIN_BYTES = 4n * 1024n * 1024n;
const MAP_SHARED = 0x1;
const MAP_ANONYMOUS = 0x20;

export type { PageSink };

export interface MemoryDumpStats {
  pages: number;
  bytes: number;
  /** Pages left out because the parent's copy is the same page (copy-on-write after fork). */
  sharedWithParent?: number;
  /** Incremental dumps: pages left in the parent's page file (unchanged since). */
  inParent?: number;
}

export interface MemoryDumpOptions {
  /**
   * The parent of this process, dumped before it and still stopped. Only pass it when
   * the restore will fork this process from its restored parent (see cow.ts).
   */
  parent?: ParentMemory;
  /**
   * Incremental dumps (track.ts): pages of areas tracked since the parent round and not
   * written since go to the sink's fromParent instead of being copied.
   */
  tracker?: ProcessTracker;
  /** Registers and arms the writable private areas for a next round (after the copy). */
  arm?: boolean;
  /**
   * A background dump (background.ts): the planned pages are handed over, not copied;
   * the caller copies them once the process runs again.
   */
  later?: BackgroundPlan;
  /**
   * Map a probe page to learn mlockall(MCL_FUTURE) (readAreas; default true). restore
   * --check leaves it out where the images say there was none: it costs two injected calls.
   */
  probeLockFuture?: boolean;
  /**
   * Leave the program break (an injected brk) unread: state.mm.brk is then 0 and the
   * caller fills it in (restore --check reads it with its other injected reads, in one stop).
   */
  skipBrk?: boolean;
}

/** What a background dump does with the memory of a process (background.ts). */
export interface BackgroundPlan {
  /**
   * ckpt registered the process's private areas before the freeze: VmFlags `uw` is its
   * own, not the program's state, and those areas are not planned now (`lazy`): their
   * pages are chosen as they are copied. (A child in the tree is planned still: its
   * pages shared copy-on-write with its parent are left out by pagemap.)
   */
  armed: boolean;
  add(plan: { runs: PageRun[]; vmas: readonly Vma[]; lazy: readonly Vma[]; registered: ReadonlySet<bigint> }): void;
  /**
   * The areas and their VmFlags without reading smaps while frozen (background-areas.ts),
   * or undefined: smaps is read as in any dump.
   */
  readAreas?(ctx: DumpContext): { areas: SmapsEntry[]; lockFuture: MemoryState['lockFuture'] } | undefined;
}

/** Where the pages of a dump go: the page data, and (incremental dumps) the pages left in the parent. */
export type TrackedSink = PageSink & { fromParent?(vaddr: bigint, nrPages: number): void };

/** What the page planning needs per area: its written pages since the parent round, when tracked. */
interface PlanArgs {
  cow?: CowFilter;
  /** Written ranges of each area tracked since the parent round (by area start). */
  written?: ReadonlyMap<bigint, readonly AddressRange[]>;
  fromParent?: (vaddr: bigint, nrPages: number) => void;
}

function kindOf(e: SmapsEntry): Vma['kind'] {
  switch (e.path) {
    case '[heap]': return 'heap';
    case '[stack]': return 'stack';
    case '[vdso]': return 'vdso';
    case '[vvar]': return 'vvar';
    case '[vvar_vclock]': return 'vvar_vclock';
    case '[vsyscall]': return 'vsyscall';
  }
  if (e.path.startsWith('/') && e.inode !== 0) return 'file';
  return 'anon';
}

function protOf(e: SmapsEntry): number {
  return (e.prot.read ? 1 : 0) | (e.prot.write ? 2 : 0) | (e.prot.exec ? 4 : 0);
}

class FileTable {
  readonly files: MappedFile[] = [];
  private index = new Map<string, number>();
  constructor(private pid: number) {}

  add(path: string, deleted: boolean, range?: { start: bigint; end: bigint }): number {
    const known = this.index.get(path);
    if (known !== undefined) return known;
    if (deleted) throw new CkptError('UNSUPPORTED', `Cannot dump process ${this.pid}: it maps ${path}, which was deleted (not supported yet)`);
    const via = range ? `/proc/${this.pid}/map_files/${range.start.toString(16)}-${range.end.toString(16)}` : path;
    let id: MappedFile;
    try {
      id = identify(path, via);
    } catch (e) {
      throw new CkptError('UNSUPPORTED', `Cannot dump process ${this.pid}: cannot read mapped file ${path}: ${(e as Error).message}`);
    }
    this.files.push(id);
    this.index.set(path, this.files.length - 1);
    return this.files.length - 1;
  }
}

/** VmFlags a dump refuses or looks at (see toVma), by flag list: readSmaps shares one list among the areas with the same flags. */
const UFFD = 1;
const SEALED = 2;
const HUGETLB = 4;
const refusedFlags = new WeakMap<readonly string[], number>();

function refusedOf(flags: readonly string[]): number {
  let bits = refusedFlags.get(flags);
  if (bits === undefined) {
    bits = (flags.some((f) => f === 'um' || f === 'uw' || f === 'ui') ? UFFD : 0) | (flags.includes('sl') ? SEALED : 0) | (flags.includes('ht') ? HUGETLB : 0);
    refusedFlags.set(flags, bits);
  }
  return bits;
}

function toVma(e: SmapsEntry, tables: { files: FileTable; shmem: ShmemTable; checking?: boolean }): Vma {
  const { files } = tables;
  const refused = refusedOf(e.vmFlags);
  // Registered with a userfaultfd (VmFlags um, uw, ui): a lazy restore still filling the
  // area, or a program's own userfaultfd. Missing pages are then not empty but somebody
  // else's to fill, and pagemap cannot tell which. (restore --check reads a lazily
  // restored process while its server holds the registration: that is expected there.)
  if (!tables.checking && (refused & UFFD) !== 0) {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${files['pid']}: its area 0x${e.start.toString(16)}-0x${e.end.toString(16)} is registered with a userfaultfd (a lazy restore still filling it?), so its missing pages cannot be told from empty ones`);
  }
  if (e.path === '/[aio]') {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${files['pid']}: it has an AIO context (io_setup) whose ring is mapped at 0x${e.start.toString(16)}; AIO contexts are not supported yet`);
  }
  // mseal(2) (VmFlags sl): the restore does not seal areas again (not done yet), and an
  // unsealed area would let the program unmap or mprotect what it had made immovable.
  if ((refused & SEALED) !== 0) {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${files['pid']}: its area 0x${e.start.toString(16)}-0x${e.end.toString(16)} ${e.path} is sealed (mseal), which is not saved`);
  }
  // Huge TLB pages (MAP_HUGETLB, SHM_HUGETLB, a hugetlbfs file; VmFlags ht) would come back
  // as ordinary pages, and memfd_secret memory cannot be read by anyone but its process.
  if ((refused & HUGETLB) !== 0) {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${files['pid']}: its area 0x${e.start.toString(16)}-0x${e.end.toString(16)} ${e.path} is of huge TLB pages (MAP_HUGETLB or hugetlbfs), which are not saved`);
  }
  if (e.deleted && e.path === '/secretmem') {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${files['pid']}: its area 0x${e.start.toString(16)}-0x${e.end.toString(16)} is secret memory (memfd_secret), which no other process can read`);
  }
  const shm = shmemKindOf(e);
  // A private mapping of /dev/zero is plain anonymous memory.
  const kind = shm ? shm.kind : e.path === '/dev/zero' && !e.shared ? 'anon' : kindOf(e);
  const vma: Vma = {
    start: e.start, end: e.end, prot: protOf(e), shared: e.shared, kind, offset: e.offset, flags: e.vmFlags,
  };
  if (shm) {
    vma.shm = tables.shmem.addArea(e, shm);
    if (shm.kind === 'shmem' && shm.name !== undefined) vma.name = shm.name;
  } else if (kind === 'file') vma.file = files.add(e.path, e.deleted, e);
  else if (kind === 'anon' && e.path.startsWith('[anon:')) vma.name = e.path.slice(6, -1);
  else if (kind === 'anon' && e.path !== '' && e.path !== '/dev/zero') {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${files['pid']}: mapping of ${e.path} at 0x${e.start.toString(16)} is not supported yet`);
  }
  return vma;
}

/**
 * The guard regions of the areas that have any (VmFlags `gu`): they hold no page (pagemap
 * shows a marker, which the page planning skips) but fault on access, and the restore
 * installs them again. A kernel that shows `gu` can scan for them (PAGE_IS_GUARD).
 */
function readGuards(pid: number, vmas: Vma[]): void {
  const guarded = vmas.filter((v) => v.flags.includes('gu'));
  if (guarded.length === 0) return;
  const fd = openPagemap(pid);
  try {
    for (const v of guarded) {
      const guards = guardRanges(fd, v);
      if (guards.length > MAX_GUARDS) {
        throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: its area 0x${v.start.toString(16)}-0x${v.end.toString(16)} has ${guards.length} guard regions, more than the ${MAX_GUARDS} an area may save`);
      }
      if (guards.length > 0) v.guards = guards;
    }
  } finally {
    closeSync(fd);
  }
}

/** Neighbouring areas closer than this share one pagemap read (the entries of the gap are read too: 8 bytes a page). */
const PAGEMAP_GAP = 2 * 1024 * 1024;
const WINDOW = Number(PAGEMAP_WINDOW);

/**
 * Windows of the areas with pages of their own, in address order (areas are, and so are
 * their windows), as parallel lists: user addresses are exact as doubles, and 10 000
 * areas then cost no object and no BigInt arithmetic each.
 */
function ownWindows(fd: number, vmas: readonly Vma[]): { areas: Vma[]; starts: number[]; ends: number[] } {
  const out = { areas: [] as Vma[], starts: [] as number[], ends: [] as number[] };
  for (const v of vmas) {
    // Shared areas keep their contents in their file or shared memory object.
    if (!hasOwnPages(v)) continue;
    // Window by window: a huge sparse area is scanned, not read whole (pagemap.ts).
    const windows = v.end - v.start <= PAGEMAP_WINDOW ? [v] : populatedWindows(fd, v);
    for (const w of windows) {
      out.areas.push(v);
      out.starts.push(Number(w.start));
      out.ends.push(Number(w.end));
    }
  }
  return out;
}

/** The runs of pages to copy (and, incremental, the pages left in the parent, given to fromParent). */
export function planPages(pid: number, vmas: readonly Vma[], args: PlanArgs): { runs: PageRun[]; inParent: number } {
  const { cow, written } = args;
  const reader = new PagemapReader(openPagemap(pid));
  const runs: PageRun[] = [];
  let inParent = 0;
  // Scratch for runsIn, reused from area to area.
  const found: number[] = [];
  const into = { spans: [] as number[], out: found };
  const range = { from: 0, to: 0, anonOnly: false };
  /** Where the last run ends (a double, as `at` below). */
  let lastEnd = -1;
  try {
    const { areas, starts, ends } = ownWindows(reader.fd, vmas);
    for (let i = 0; i < areas.length;) {
      // One pread for a group of neighbouring windows (10 000 small areas: a handful of reads, not 10 000).
      const base = starts[i]!;
      let j = i + 1;
      while (j < areas.length && starts[j]! - ends[j - 1]! <= PAGEMAP_GAP && ends[j]! - base <= WINDOW) j++;
      const all = reader.read(BigInt(base), BigInt(ends[j - 1]!));
      const words = pagemapWords(all);
      for (; i < j; i++) {
        const v = areas[i]!;
        const start = starts[i]!;
        const from = (start - base) / PAGE;
        const to = Math.min((ends[i]! - base) / PAGE, all.length >> 3);
        const backed = v.kind === 'file' || isShmemArea(v);
        const readable = (v.prot & 1) !== 0;
        const dirty = written?.get(v.start);
        if ((cow && v.inherited) || dirty) {
          // Both edit the entries in place (words sees their changes).
          const pagemap = all.subarray(from * 8, to * 8);
          cow?.filter(v, { start: BigInt(start), pagemap });
          if (dirty) {
            for (const p of takeUnwritten(pagemap, { start: BigInt(start), written: dirty, anonOnly: backed })) {
              args.fromParent?.(p.vaddr, p.nrPages);
              inParent += p.nrPages;
            }
          }
        }
        found.length = 0;
        range.from = from;
        range.to = to;
        range.anonOnly = backed;
        runsIn(words, range, into);
        for (let k = 0; k < found.length; k += 3) {
          const at = base + (from + found[k]!) * PAGE;
          const len = found[k + 1]! * PAGE;
          const viaMem = !readable || found[k + 2] === 0;
          const last = runs.at(-1);
          if (last && last.viaMem === viaMem && last.readable === readable && lastEnd === at) last.len += len;
          else runs.push({ vaddr: BigInt(at), len, viaMem, readable });
          lastEnd = at + len;
        }
      }
    }
  } finally {
    closeSync(reader.fd);
  }
  return { runs, inParent };
}

function dumpPages(ctx: DumpContext, vmas: Vma[], args: PlanArgs & { sink: PageSink; later?: BackgroundPlan; registered: ReadonlySet<bigint> }): MemoryDumpStats & { lazy: boolean } {
  const { later, registered } = args;
  // Big writable areas only: planning costs little for the others (pagemap.ts skips what is
  // not populated), and a planned area that goes during the copy (munmap, MADV_DONTNEED)
  // can still be told apart from one that held nothing.
  const lazy = later?.armed && !args.cow ? vmas.filter((v) => registered.has(v.start) && hasOwnPages(v) && (v.prot & 2) !== 0 && v.end - v.start >= LAZY_MIN_BYTES) : [];
  const { runs, inParent } = planPages(ctx.pid, lazy.length > 0 ? vmas.filter((v) => !lazy.includes(v)) : vmas, args);
  if (later) later.add({ runs, vmas, lazy, registered });
  else copyPages(ctx.pid, { runs, sink: args.sink, onBytes: ctx.progress });
  const bytes = runs.reduce((n, r) => n + r.len, 0);
  return { pages: bytes / PAGE, bytes, inParent, lazy: lazy.length > 0 };
}

/**
 * A background dump's own registrations (VmFlags `uw` of private areas, made before the
 * freeze): not the program's state. (It registers no shared area: `uw` there is the
 * program's, refused by toVma.)
 */
function ownRegistrations(areas: SmapsEntry[]): { areas: SmapsEntry[]; registered: Set<bigint>; written: Map<bigint, AddressRange[]> } {
  const registered = new Set<bigint>();
  const out = areas.map((e) => {
    if (!e.vmFlags.includes('uw') || e.shared) return e;
    registered.add(e.start);
    return { ...e, vmFlags: e.vmFlags.filter((f) => f !== 'uw') };
  });
  return { areas: out, registered, written: new Map() };
}

/**
 * Areas tracked since the parent round show VmFlags `uw` (our registration, not the
 * program's state: it is not saved); their written pages are scanned (and re-armed).
 */
export function trackedAreas(areas: SmapsEntry[], tracker: ProcessTracker | undefined): { areas: SmapsEntry[]; registered: Set<bigint>; written: Map<bigint, AddressRange[]> } {
  const registered = new Set<bigint>();
  const written = new Map<bigint, AddressRange[]>();
  if (!tracker) return { areas, registered, written };
  const out = areas.map((e) => {
    if (!e.vmFlags.includes('uw')) return e;
    registered.add(e.start);
    const dirty = tracker.dirtySince({ start: e.start, end: e.end, registered: true });
    if (dirty) written.set(e.start, dirty);
    return { ...e, vmFlags: e.vmFlags.filter((f) => f !== 'uw') };
  });
  return { areas: out, registered, written };
}

/** The areas a next round tracks: private and writable (others are saved whole each round). */
export function armable(vmas: readonly Vma[], registered: ReadonlySet<bigint>): (AddressRange & { registered: boolean })[] {
  return vmas.filter((v) => hasOwnPages(v) && (v.prot & 2) !== 0).map((v) => ({ start: v.start, end: v.end, registered: registered.has(v.start) }));
}

/** Lowest address above every user mapping (x86_64, 4-level page tables): [vsyscall] lies above it. */
const USER_TOP = 1n << 47n;
const MAP_FIXED_NOREPLACE = 0x100000;

/** Where the probe goes if free: the middle of the user address space, far from the program's areas on a usual layout. */
const PROBE_AT = USER_TOP / 2n;
/** Free room the probe wants on either side of it (keeps it out of any stack's guard gap). */
const PROBE_ROOM = 1n << 21n;

/**
 * A free page for the probe: PROBE_AT when nothing lies within PROBE_ROOM of it (one
 * PROCMAP_QUERY lookup), else the middle of the widest hole of the address space (the
 * whole maps read: 10 000 areas cost ~20 ms, issue 13).
 */
function probeAddress(pid: number): bigint {
  const next = readMaps(pid, { after: PROBE_AT - PROBE_ROOM })[0];
  if (next === undefined || next.start >= PROBE_AT + BigInt(PAGE) + PROBE_ROOM) return PROBE_AT;
  const maps = readMaps(pid).filter((m) => m.end <= USER_TOP);
  let best = { start: 0n, end: 0n };
  for (let i = 1; i < maps.length; i++) {
    const hole = { start: maps[i - 1]!.end, end: maps[i]!.start };
    if (hole.end - hole.start > best.end - best.start) best = hole;
  }
  if (best.end - best.start < BigInt(4 * PAGE)) throw new CkptError('INTERNAL', `Cannot dump process ${pid}: no free page for the mlockall probe`);
  return (best.start + (best.end - best.start) / 2n) & ~BigInt(PAGE - 1);
}

/**
 * mlockall(MCL_FUTURE[|MCL_ONFAULT]) leaves VM_LOCKED[|VM_LOCKONFAULT] in mm->def_flags,
 * which no /proc file shows; every new mapping gets them. So ckpt maps a probe page and
 * reads its VmFlags (lo, lf) in the same smaps read as the program's areas: always,
 * since a program may have mapped nothing since its mlockall. Shared anonymous: it
 * never merges with a neighbour, so it is exactly one area, left out. The probe goes
 * at a free address chosen first, so that its munmap can be armed before the mmap
 * (RemoteTask.runIfLost): a ckpt killed at any moment leaves the thread to unmap it
 * on its way back. A process without that way back (no `syscall; ret` or no stack
 * room) gets the munmap staged at its syscall entry instead, as its own scratch page
 * is; only the moment between the mmap and the stage is exposed there.
 */
function readAreas(ctx: DumpContext, opts: { probe: boolean }): { areas: SmapsEntry[]; lockFuture: MemoryState['lockFuture'] } {
  if (!opts.probe) return { areas: readSmaps(ctx.pid), lockFuture: undefined };
  const { at, result: smaps } = withProbePage(ctx.remote, { pid: ctx.pid }, () => readSmaps(ctx.pid));
  const area = smaps.find((e) => e.start === at);
  if (!area || area.end !== at + BigInt(PAGE)) throw new CkptError('INTERNAL', `Cannot dump process ${ctx.pid}: its probe page at 0x${at.toString(16)} is not one area in smaps`);
  const lockFuture = !area.vmFlags.includes('lo') ? undefined : area.vmFlags.includes('lf') ? 'onfault' : 'locked';
  return { areas: smaps.filter((e) => e !== area), lockFuture };
}

/** Runs `fn` while a fresh shared anonymous page (readAreas' probe) is mapped in the target at `at` (PROT_NONE unless `prot`). */
export function withProbePage<T>(r: RemoteTask, opts: { pid: number; prot?: number }, fn: (at: bigint) => T): { at: bigint; result: T } {
  const at = probeAddress(opts.pid);
  const unmap = { nr: NR.munmap, args: [at, BigInt(PAGE)] };
  const armed = r.runIfLost([unmap]);
  try {
    r.call(NR.mmap, [at, PAGE, opts.prot ?? 0, MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0], 'mmap(probe)');
    // Unarmed: the munmap waits at its syscall entry while fn runs; if ckpt dies, it still runs.
    if (!armed) r.stage(NR.munmap, unmap.args, 'munmap(probe)');
    try {
      return { at, result: fn(at) };
    } finally {
      if (armed) r.call(NR.munmap, unmap.args, 'munmap(probe)');
      else r.end();
    }
  } finally {
    if (armed) r.runIfLost([]);
  }
}

/**
 * A pre-dump, while the tree is stopped: which pages to copy (the caller copies them once
 * the tree runs again), the unchanged ones given to fromParent, and every writable
 * private area armed for the next round. Only the private pages matter here: the final
 * dump saves the layout, files and shared objects.
 */
export function planPreDump(pid: number, args: { tracker: ProcessTracker; fromParent(vaddr: bigint, nrPages: number): void }): { runs: PageRun[]; inParent: number } {
  const { areas, registered, written } = trackedAreas(readSmaps(pid), args.tracker);
  const vmas: Vma[] = areas.map((e) => {
    const shm = shmemKindOf(e);
    return { start: e.start, end: e.end, prot: protOf(e), shared: e.shared, kind: shm ? shm.kind : kindOf(e), offset: e.offset, flags: e.vmFlags };
  });
  const plan = planPages(pid, vmas, { written, fromParent: args.fromParent });
  args.tracker.arm(armable(vmas, registered));
  return plan;
}

export function dumpMemory(ctx: DumpContext, sink: TrackedSink, opts: MemoryDumpOptions = {}): { state: MemoryState; stats: MemoryDumpStats } {
  const files = new FileTable(ctx.pid);
  const shmem = new ShmemTable(ctx);
  // Resources dumped before memory may have left ckpt's scratch area in the target.
  ctx.remote.releaseScratch();
  const read = opts.later?.readAreas?.(ctx) ?? readAreas(ctx, { probe: opts.probeLockFuture ?? true });
  const { lockFuture } = read;
  const { areas, registered, written } = opts.later?.armed ? ownRegistrations(read.areas) : trackedAreas(read.areas, opts.tracker);
  const vmas = areas.map((e) => toVma(e, { files, shmem, checking: ctx.checking }));
  readGuards(ctx.pid, vmas);
  const stat = readStat(ctx.pid);
  const brk = opts.skipBrk ? 0n : BigInt.asUintN(64, ctx.remote.call(NR.brk, [0], 'brk'));
  let exePath: string;
  try {
    exePath = readlinkSync(`/proc/${ctx.pid}/exe`);
  } catch (e) {
    throw new CkptError('NO_PROCESS', `Cannot dump process ${ctx.pid}: cannot read its executable link`, { cause: e });
  }
  const deleted = exePath.endsWith(' (deleted)');
  const exe = files.add(deleted ? exePath.slice(0, -10) : exePath, deleted);
  const cow = opts.parent ? new CowFilter(opts.parent) : undefined;
  let stats: MemoryDumpStats & { lazy?: boolean };
  try {
    if (cow) for (const v of vmas) if (hasOwnPages(v)) cow.mark(v, (i) => files.files[i ?? -1]?.path);
    stats = dumpPages(ctx, vmas, { sink, cow, written, fromParent: sink.fromParent?.bind(sink), later: opts.later, registered });
    if (cow) stats.sharedWithParent = cow.omitted;
    if (opts.arm) opts.tracker?.arm(armable(vmas, registered));
  } finally {
    cow?.close();
  }
  const state: MemoryState = {
    vmas: builtAreas(vmas),
    files: files.files,
    shmem: shmem.objects,
    mm: {
      startCode: stat.startCode, endCode: stat.endCode, startData: stat.startData, endData: stat.endData,
      startBrk: stat.startBrk, brk, startStack: stat.startStack, argStart: stat.argStart, argEnd: stat.argEnd,
      envStart: stat.envStart, envEnd: stat.envEnd,
    },
    auxv: readAuxv(ctx.pid).toString('base64'),
    exe,
    pages: stats.pages,
  };
  // Not known yet when the pages are chosen as they are copied (background.ts).
  if (stats.lazy) delete state.pages;
  delete stats.lazy;
  if (opts.tracker) state.inParent = stats.inParent ?? 0;
  if (lockFuture) state.lockFuture = lockFuture;
  return { state, stats };
}
