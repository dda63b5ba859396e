/**
 * Rebuilding memory in the new process by injected syscalls: the vDSO moved into
 * place, every area mapped at its old address with its old protection and flags, page
 * contents written by ckpt from the page file (process_vm_writev, see fillPages),
 * protections set back, then the mm layout
 * (PR_SET_MM_MAP) so /proc/PID/{cmdline,environ,exe} and brk are as before.
 */
import { closeSync, readlinkSync, readSync } from 'node:fs';
import { openImage, piecesIn } from '../../images/index.js';
import { CkptError } from '../../common/errors.js';
import { NR, vmWrite, type Arg } from '../../sys/index.js';
import { unitBuffer, unitsOf } from './split.js';
import { checkInterrupted, findSyscallSite, type RemoteTask } from '../../infect/index.js';
import type { LazyPages, RestoreContext } from '../types.js';
import { checkIdentity } from './files.js';
import { checkRuns } from './check.js';
import { inTargetAs } from '../process/fscreds.js';
import { readMaps } from '../../proc/index.js';
import { currentSpan, findHole, placeVdso, savedSpan } from './layout.js';
import { attachSysv, SharedMaps } from './shared-maps.js';
import { fillThroughMem, splitRuns, unaccounted } from './unaccounted.js';
import { isKernelArea, type MemoryState, type Vma } from './state.js';

const PAGE = 4096n;
const MAP = { SHARED: 0x1, PRIVATE: 0x2, DROPPABLE: 0x8, FIXED: 0x10, ANONYMOUS: 0x20, GROWSDOWN: 0x100, NORESERVE: 0x4000 } as const;
const MADV: Record<string, number> = { dd: 16, dc: 10, wf: 18, hg: 14, nh: 15, mg: 12 /* MADV_MERGEABLE */ };
const O_RDONLY = 0;
const O_RDWR = 2;
const O_CLOEXEC = 0o2000000;
const AT_FDCWD = -100;
/** The hole kept for ckpt's scratch area while areas are mapped: room for the arguments and a table of ~4000 batched calls. */
const SCRATCH = 256n * 1024n;

export interface PageSource {
  path: string;
  runs: readonly { vaddr: bigint; nrPages: number; fileOffset: bigint }[];
}

/** Checks, before anything is built, that every mapped file is the one seen at dump. */
export function checkMappedFiles(state: MemoryState, who: string): void {
  for (const f of state.files) checkIdentity(f, who);
}

function openIn(remote: RemoteTask, path: string, flags: number): number {
  const addr = remote.put(Buffer.from(`${path}\0`));
  return Number(remote.call(NR.openat, [AT_FDCWD, addr, flags | O_CLOEXEC, 0], `openat(${path})`));
}

function mapAreas(ctx: RestoreContext, state: MemoryState, opts: { filled: Set<Vma>; inherited: boolean }): void {
  const { filled, inherited } = opts;
  const r = ctx.remote;
  const fds = new Map<string, number>();
  attachSysv(ctx, state);
  const objects = new SharedMaps(ctx, state);
  // First the fds the mappings need (their numbers are results we use), then every
  // mmap in batches: one stop per batch instead of two per area (a thread's stack
  // and guard page are two areas, so this is most of a many-threaded restore).
  const maps: { v: Vma; args: Arg[] }[] = [];
  // Mapped files are opened with the process's own credentials when the images are not trusted.
  inTargetAs(r, { pid: ctx.pid, as: ctx.openAs }, () => {
    for (const v of state.vmas) {
      if (isKernelArea(v) || v.kind === 'sysv') continue;
      const len = v.end - v.start;
      const prot = filled.has(v) ? v.prot | 2 : v.prot;
      if (v.inherited && inherited) {
        // Kept as forked from the parent; writable while this process's own pages go in.
        if (prot !== v.prot) r.call(NR.mprotect, [v.start, len, prot], 'mprotect');
        continue;
      }
      // MAP_DROPPABLE (Linux 6.11, VmFlags dp) is a mapping type of its own, private anonymous memory the kernel may drop.
      let flags = MAP.FIXED | (v.shared ? MAP.SHARED : v.flags.includes('dp') ? MAP.DROPPABLE : MAP.PRIVATE);
      if (v.flags.includes('gd')) flags |= MAP.GROWSDOWN;
      if (v.flags.includes('nr')) flags |= MAP.NORESERVE;
      let fd = -1;
      if (v.kind === 'file') {
        const file = state.files[v.file ?? -1];
        if (!file) throw new CkptError('BAD_IMAGE', `Cannot restore process ${ctx.pid}: area at 0x${v.start.toString(16)} names no file`);
        // VM_MAYWRITE (VmFlags mw) of a shared file mapping says the file was open for
        // writing: without it, mprotect(PROT_WRITE) of a read-only mapping fails (EACCES).
        const mode = v.shared && (v.prot & 2 || v.flags.includes('mw')) ? O_RDWR : O_RDONLY;
        const key = `${mode}:${file.path}`;
        fd = fds.get(key) ?? openIn(r, file.path, mode);
        fds.set(key, fd);
      } else if (v.kind === 'shmem' || v.kind === 'memfd') {
        fd = objects.fdFor(v);
        // The object is rebuilt writable; a shared mapping of it made from a read-only fd
        // had no VM_MAYWRITE (nor has one of a write-sealed memfd): map it read-only too.
        if (v.shared && !v.flags.includes('mw')) {
          const ro = openIn(r, `/proc/self/fd/${fd}`, O_RDONLY);
          fds.set(`ro:${ro}`, ro);
          fd = ro;
        }
      } else {
        flags |= MAP.ANONYMOUS;
      }
      maps.push({ v, args: [v.start, len, prot, flags, fd, fd >= 0 ? v.offset : 0] });
    }
  });
  // MAP_FIXED either maps exactly there or fails, and a failure stops the batch. The
  // whole scratch hole holds the table: ~4000 mmaps a stop (10 000 areas: 3 stops, was 210).
  r.scratch(Number(SCRATCH));
  r.batch(() => {
    for (const m of maps) r.call(NR.mmap, m.args, () => `mmap(0x${m.v.start.toString(16)})`);
  });
  for (const { v } of maps) {
    if (v.name === undefined) continue;
    const name = r.put(Buffer.from(`${v.name}\0`), 8192);
    r.raw(NR.prctl, [0x53564d41 /* PR_SET_VMA */, 0 /* PR_SET_VMA_ANON_NAME */, v.start, v.end - v.start, name]);
  }
  for (const fd of fds.values()) r.call(NR.close, [fd], 'close');
  objects.close();
}

/**
 * ckpt writes every page into the target: pread of a unit of the page file into a
 * buffer that stays in cache, then one process_vm_writev to the unit's segments. The
 * kernel faults the target's fresh pages in through get_user_pages, not through the
 * target's page tables: on a guest whose page tables the host shadows (this VM), the
 * target's own preadv into fresh memory cost two exits to the host per page and was
 * 10x slower (docs/performance.md, "Cold memory"). The restored program pays one such
 * exit when it first touches a page, as any program does with memory it has not used.
 */
function fillPages(ctx: RestoreContext, pages: PageSource): void {
  if (pages.runs.length === 0) return;
  const file = openImage(pages.path);
  try {
    const buf = unitBuffer();
    const units = unitsOf(pages.runs.map((run) => ({ vaddr: run.vaddr, len: run.nrPages * 4096, fileOffset: Number(run.fileOffset) })));
    for (const u of units) {
      checkInterrupted();
      // restore --check compares the process with these same bytes (kept-pages.ts).
      const kept = ctx.keptPages?.room(pages.path, u);
      const data = kept ?? buf.subarray(0, u.bytes);
      for (let got = 0; got < u.bytes;) {
        const n = readSync(file, data, got, u.bytes - got, u.fileStart + got);
        if (n <= 0) throw truncated(ctx, { path: pages.path, got, bytes: u.bytes, at: u.fileStart });
        got += n;
      }
      const put = vmWrite(ctx.pid, data, u.segs.map((s) => ({ base: s.vaddr, len: s.len })));
      if (put !== u.bytes) throw new CkptError('INTERNAL', `Cannot restore process ${ctx.pid}: wrote ${put} of ${u.bytes} bytes of memory at 0x${u.segs[0]!.vaddr.toString(16)}`);
      ctx.progress?.(u.bytes);
    }
  } finally {
    closeSync(file);
  }
}

/** fillPages, the runs fetched first when the page files are on a page server. */
function fetchAndFill(ctx: RestoreContext, pages: PageSource): void {
  ctx.fetchPages?.(pages);
  fillPages(ctx, pages);
}

function truncated(ctx: RestoreContext, args: { path: string; got: number; bytes: number; at: bigint | number }): CkptError {
  return new CkptError('BAD_IMAGE', `Cannot restore process ${ctx.pid}: page image ${args.path} is truncated (read ${args.got} of ${args.bytes} bytes at ${args.at})`);
}

/**
 * Areas whose pages a lazy restore leaves to the server: private anonymous memory. The
 * kernel refuses MISSING mode on private file mappings of ext4; shared memory is one
 * object for several processes; a locked area would be faulted in whole by mlock anyway.
 */
export function lazyAreas(filled: Set<Vma>): Set<Vma> {
  // MADV_WIPEONFORK (wf): a child forked while pages are missing must see zeros there, and
  // the server would give it the saved pages (it copies what the parent missed).
  const eager = (v: Vma) => v.shared || v.inherited || v.flags.includes('lo') || v.flags.includes('wf');
  return new Set([...filled].filter((v) => (v.kind === 'anon' || v.kind === 'heap' || v.kind === 'stack') && !eager(v)));
}

const O_NONBLOCK = 0o4000;

/**
 * A userfaultfd made by the process itself (so it is bound to its memory), not
 * user-mode-only (a read(2) of the kernel into a lazy page must wait for it, not fail
 * with EFAULT), handed to the server, then closed in the process.
 */
function serveLazily(ctx: RestoreContext, args: { lazy: LazyPages; areas: Set<Vma> }): void {
  const r = ctx.remote;
  const uffd = Number(r.call(NR.userfaultfd, [O_CLOEXEC | O_NONBLOCK], 'userfaultfd'));
  args.lazy.serve({ pid: ctx.pid, uffd, areas: [...args.areas].map((v) => ({ start: v.start, end: v.end })) });
  r.call(NR.close, [uffd], 'close');
}

/** The pages under `ranges`, as sorted page runs without overlaps. */
function pagesAround(ranges: readonly { start: bigint; end: bigint }[]): { vaddr: bigint; nrPages: number }[] {
  const pages = new Set<bigint>();
  for (const r of ranges) for (let p = r.start & ~(PAGE - 1n); p < r.end; p += PAGE) pages.add(p);
  return [...pages].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((vaddr) => ({ vaddr, nrPages: 1 }));
}

const MLOCK_ONFAULT = 1;
const MCL = { FUTURE: 2, ONFAULT: 4 } as const;

function finishAreas(ctx: RestoreContext, state: MemoryState, filled: Set<Vma>): void {
  const r = ctx.remote;
  const areas = state.vmas.filter((v) => !isKernelArea(v));
  // Protections in one batch (a process of read-only areas has thousands): an mprotect
  // has no effect on the advice and locks that follow.
  r.batch(() => {
    for (const v of areas) if (filled.has(v) && !(v.prot & 2)) r.call(NR.mprotect, [v.start, v.end - v.start, v.prot], 'mprotect');
  });
  for (const v of areas) {
    const len = v.end - v.start;
    for (let i = 0; i < v.flags.length; i++) {
      const advice = MADV[v.flags[i]!];
      // One by one: advice the kernel refuses is skipped, where a batch would stop.
      if (advice !== undefined) r.raw(NR.madvise, [v.start, len, advice]);
    }
    for (const g of v.guards ?? []) {
      if (g.start < v.start || g.end > v.end || g.start >= g.end || (g.start | g.end) % PAGE !== 0n) {
        throw new CkptError('BAD_IMAGE', `Cannot restore process ${ctx.pid}: guard region 0x${g.start.toString(16)}-0x${g.end.toString(16)} is not a page range of its area 0x${v.start.toString(16)}-0x${v.end.toString(16)}`);
      }
      // After the pages: installing a guard drops what the range holds (nothing was saved there).
      r.call(NR.madvise, [g.start, g.end - g.start, MADV_GUARD_INSTALL], `madvise(0x${g.start.toString(16)}, MADV_GUARD_INSTALL)`);
    }
    // Locked once its pages are in (a plain mlock faults in the rest). The target still
    // has the restorer's credentials (creds come last), so CAP_IPC_LOCK lets it lock
    // whatever RLIMIT_MEMLOCK its owner has: the original was allowed these locks.
    if (v.flags.includes('lo')) {
      const how = v.flags.includes('lf') ? MLOCK_ONFAULT : 0;
      r.call(NR.mlock2, [v.start, len, how], `mlock2(0x${v.start.toString(16)})`);
    }
  }
  // MCL_FUTURE alone sets mm->def_flags and leaves the current areas as they are.
  if (state.lockFuture) r.call(NR.mlockall, [MCL.FUTURE | (state.lockFuture === 'onfault' ? MCL.ONFAULT : 0)], 'mlockall');
}

const MADV_DONTNEED = 4;
const MADV_GUARD_INSTALL = 102;

/**
 * mprotect drops VM_ACCOUNT from an anonymous area that never had a page (no anon_vma),
 * so an empty area that had one (written, then MADV_DONTNEED) keeps its charge only if
 * it has had one again: a byte is written and the page dropped, leaving it empty.
 */
function keepCharged(ctx: RestoreContext, areas: readonly Vma[]): void {
  const anon = areas.filter((v) => v.kind === 'anon' || v.kind === 'heap' || v.kind === 'stack');
  for (const v of anon) ctx.remote.write(v.start, Buffer.alloc(1));
  ctx.remote.batch(() => {
    for (const v of anon) ctx.remote.call(NR.madvise, [v.start, PAGE, MADV_DONTNEED], 'madvise(MADV_DONTNEED)');
  });
}

/** PR_SET_MM_MAP: struct prctl_mm_map (104 bytes) with auxv and the executable's fd. */
function setMmMap(ctx: RestoreContext, state: MemoryState): void {
  const r = ctx.remote;
  const exe = state.files[state.exe];
  if (!exe) throw new CkptError('BAD_IMAGE', `Cannot restore process ${ctx.pid}: no executable in the image`);
  // A process forked from its restored parent has the right executable already, and the
  // kernel refuses to replace it while it is mapped (EBUSY): then -1 leaves it as it is.
  let current = '';
  try {
    current = readlinkSync(`/proc/${ctx.pid}/exe`);
  } catch {
    // no executable link yet
  }
  const exeFd = current === exe.path ? -1 : inTargetAs(r, { pid: ctx.pid, as: ctx.openAs }, () => openIn(r, exe.path, O_RDONLY));
  const auxv = Buffer.from(state.auxv, 'base64');
  const m = state.mm;
  const map = Buffer.alloc(104);
  [m.startCode, m.endCode, m.startData, m.endData, m.startBrk, m.brk, m.startStack, m.argStart, m.argEnd, m.envStart, m.envEnd]
    .forEach((v, i) => map.writeBigUInt64LE(v, i * 8));
  const auxvAddr = r.put(auxv, 4096);
  map.writeBigUInt64LE(auxvAddr, 88);
  map.writeUInt32LE(auxv.length, 96);
  map.writeInt32LE(exeFd, 100);
  const mapAddr = r.put(map, 0);
  r.call(NR.prctl, [35 /* PR_SET_MM */, 14 /* PR_SET_MM_MAP */, mapAddr, 104, 0], 'prctl(PR_SET_MM_MAP)');
  if (exeFd >= 0) r.call(NR.close, [exeFd], 'close');
}

/**
 * A process forked from its restored parent keeps the areas it inherited unchanged
 * (Vma.inherited) and drops every other one; the vDSO is already in place.
 */
function keepInherited(ctx: RestoreContext, state: MemoryState): void {
  const r = ctx.remote;
  const cur = currentSpan(readMaps(ctx.pid));
  const want = savedSpan(state.vmas);
  if (cur && want && cur.start !== want.start) {
    throw new CkptError('INTERNAL', `Cannot restore process ${ctx.pid}: forked with its vDSO at 0x${cur.start.toString(16)}, it had it at 0x${want.start.toString(16)}`);
  }
  const maps = readMaps(ctx.pid);
  // Inject from the vDSO, which stays: a `syscall` (0f 05) in it.
  const vdso = maps.find((m) => m.path === '[vdso]');
  if (vdso) {
    const code = r.read(vdso.start, Number(vdso.end - vdso.start));
    for (let i = code.indexOf(0x0f); i >= 0 && i + 1 < code.length; i = code.indexOf(0x0f, i + 1)) {
      if (code[i + 1] === 0x05) {
        r.setSite(vdso.start + BigInt(i));
        break;
      }
    }
  }
  // The parent's areas may have merged (adjacent, alike) since its dump: unmap exactly
  // what no inherited area covers, whatever the current boundaries are.
  const kept = state.vmas.filter((v) => v.inherited && !isKernelArea(v)).sort((a, b) => (a.start < b.start ? -1 : 1));
  for (const m of maps) {
    if (KERNEL_NAMES.has(m.path)) continue;
    if (m.start <= r.site && r.site < m.end) continue;
    let at = m.start;
    for (const k of kept) {
      if (k.end <= at || k.start >= m.end) continue;
      if (k.start > at) r.call(NR.munmap, [at, k.start - at], 'munmap');
      at = k.end;
    }
    if (at < m.end) r.call(NR.munmap, [at, m.end - at], 'munmap');
  }
  r.dropScratch();
}

const KERNEL_NAMES = new Set(['[vdso]', '[vvar]', '[vvar_vclock]', '[vsyscall]']);

/**
 * Rebuilds the memory of ctx.pid. With `inherited`, the process was forked from its
 * parent after the parent's memory was restored, and its dump was made with the
 * parent (dumpMemory's `parent` option): areas marked inherited are kept as forked,
 * with the pages still shared copy-on-write; only the process's own pages are written.
 */
export function restoreMemory(
  ctx: RestoreContext,
  args: { state: MemoryState; pages: PageSource; older?: readonly PageSource[]; inherited?: boolean; touched?: readonly { start: bigint; end: bigint }[] },
): { lazy: Vma[] } {
  const { state, pages } = args;
  // An incremental dump: pages unchanged since a parent dump come from the parents' files.
  const sources = [pages, ...(args.older ?? [])];
  const inherited = args.inherited ?? false;
  const r = ctx.remote;
  const runs = sources.length === 1 ? pages.runs : sources.flatMap((s) => s.runs).sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
  const allFilled = checkRuns(ctx.pid, state.vmas, { runs });
  const viaMem = unaccounted(allFilled);
  // Areas mapped writable while their pages go in; the unaccounted ones keep their protection.
  const filled = new Set([...allFilled].filter((v) => !viaMem.has(v)));
  const lazy = ctx.lazy ? lazyAreas(filled) : new Set<Vma>();
  for (const v of lazy) filled.delete(v);
  // Charged to the commit limit (VmFlags `ac`) while once writable, then made read-only or
  // PROT_NONE (a reserve, a guard) with no page in it now: mapped writable and protected
  // after, as the program did; mapped with its own protection it would not be charged.
  const charged = state.vmas.filter((v) => !v.shared && !(v.prot & 2) && v.flags.includes('ac') && !isKernelArea(v) && !filled.has(v) && !lazy.has(v));
  for (const v of charged) filled.add(v);
  if (inherited) {
    keepInherited(ctx, state);
  } else {
    const oldSite = r.site;
    placeVdso(r, state.vmas);
    r.setSite(findSyscallSite(ctx.pid));
    // The page we injected from, unless it is the vDSO itself (a process forked from a restored parent).
    const inKernelArea = readMaps(ctx.pid).some((m) => KERNEL_NAMES.has(m.path) && m.start <= oldSite && oldSite < m.end);
    if (!inKernelArea) r.call(NR.munmap, [oldSite & ~(PAGE - 1n), PAGE], 'munmap');
  }
  r.setScratchHint(findHole(ctx.pid, { vmas: state.vmas, size: SCRATCH }));
  mapAreas(ctx, state, { filled, inherited });
  if (ctx.lazy && lazy.size > 0) {
    // Pages the rest of the restore touches (the kernel writes each thread's struct rseq
    // at every return from an injected call): in before the areas are registered, so that
    // the restore never waits for the lazy-pages server (still starting, perhaps).
    const hot = [...pagesAround(args.touched ?? [])];
    for (const source of sources) fetchAndFill(ctx, { path: source.path, runs: piecesIn(hot, splitRuns(source.runs, lazy).inside) });
    // Registered before anything else can touch their pages (a page touched before would
    // be a zero page the server could no longer fill).
    serveLazily(ctx, { lazy: ctx.lazy, areas: lazy });
  }
  for (const source of sources) {
    const { rest, inside } = splitRuns(source.runs, viaMem);
    fetchAndFill(ctx, { path: source.path, runs: lazy.size > 0 ? splitRuns(rest, lazy).rest : rest });
    ctx.fetchPages?.({ path: source.path, runs: inside });
    fillThroughMem(ctx.pid, { path: source.path, runs: inside });
  }
  keepCharged(ctx, charged);
  finishAreas(ctx, state, filled);
  setMmMap(ctx, state);
  return { lazy: [...lazy] };
}
