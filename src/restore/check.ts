/**
 * `restore --check`: once every process is rebuilt and before any runs, read each one
 * back with the collectors the dump uses (every resource module, memory with its page
 * contents, every thread's registers and state, the tree) and compare with the images,
 * field by field. Any difference fails the restore, naming the process and the field.
 * A module added to the registry is checked with no change here, so state that a
 * restore drops cannot go unnoticed.
 *
 * Fields that legitimately differ are made comparable first (see `canonical`): inode
 * numbers and open-description ids are new after a restore, so each is replaced by
 * the order in which it first appears; only the pattern of sharing is compared.
 */
import { withoutGivenFds, type InheritFd } from '../resources/files/kinds/inherit.js';
import { withConnectionsClosed } from '../resources/files/kinds/inet.js';
import type { FilesState } from '../resources/files/schema.js';
import { statSync } from 'node:fs';
import { CkptError } from '../common/errors.js';
import { keepProcReads, readMaps, readStat } from '../proc/index.js';
import { NR, NT, ptrace, type Regs } from '../sys/index.js';
import { BATCH_SCRATCH, RemoteTask, SeizedProcess } from '../infect/index.js';
import type { ImageReader, PageReader } from '../images/index.js';
import { dumpMemory } from '../resources/memory/dump.js';
import type { ShmemObject, Vma } from '../resources/memory/state.js';
import type { KeptPages } from '../resources/memory/kept-pages.js';
import { descriptionIds, linkCounts } from '../resources/sharing/descriptions.js';
import { resumeRegs, rewoundRegs } from '../resources/thread/cpu.js';
import { readThread } from '../resources/thread/threads.js';
import type { ThreadCpu } from '../resources/thread/state.js';
import { callsOut, gatherReads } from '../resources/process/inject.js';
import type { DumpContext, ObjectPageSink } from '../resources/types.js';
import type { TreeEntry } from '../resources/images.js';
import type { BuiltProcess } from './process.js';
import { PageCheck, type SavedPages } from './check-pages.js';
import { comparer, MAX_REPORTED, sameData, type Compare } from './check-compare.js';

const SIGCHLD = 17;


/**
 * Adjacent areas that differ in nothing a program can see become one after a restore
 * when the kernel merges them (they were two at dump for reasons that do not survive,
 * such as different anon_vma parents): both layouts are compared merged.
 */
function coalesced(vmas: readonly Vma[]): Vma[] {
  const out: Vma[] = [];
  const same = (a: Vma, b: Vma) => {
    // Guard regions (bigints) are per page, not per area: they join with the areas.
    const { start: _s1, end: e1, offset: o1, inherited: _i1, guards: _g1, ...ra } = a;
    const { start: s2, end: _e2, offset: o2, inherited: _i2, guards: _g2, ...rb } = b;
    const contiguous = a.kind === 'file' || a.kind === 'shmem' || a.kind === 'memfd' ? o2 === o1 + (e1 - a.start) : o1 === o2;
    // The cheap fields first: most neighbours differ in protection or kind.
    return e1 === s2 && contiguous && a.prot === b.prot && a.kind === b.kind && a.shared === b.shared && JSON.stringify(ra) === JSON.stringify(rb);
  };
  for (const v of vmas) {
    const last = out.at(-1);
    if (last && same(last, v)) out[out.length - 1] = joined(last, v);
    else out.push(v);
  }
  return out;
}

/** Two neighbouring areas as one (their guard regions too, a run across the seam as one). */
function joined(a: Vma, b: Vma): Vma {
  const out: Vma = { ...a, end: b.end };
  if (!a.guards && !b.guards) return out;
  const guards = (a.guards ?? []).map((g) => ({ ...g }));
  for (const g of b.guards ?? []) {
    const last = guards.at(-1);
    if (last && last.end === g.start) last.end = g.end;
    else guards.push({ ...g });
  }
  out.guards = guards;
  return out;
}

function zombieState(pid: number): { state: string; ppid: number } | 'gone' {
  try {
    const st = readStat(pid);
    return { state: st.state, ppid: st.ppid };
  } catch {
    return 'gone';
  }
}

/**
 * Shared memory objects get new inodes at restore, and their page files are named by
 * inode: which saved page file each restored object's pages are to be compared with.
 */
function savedObjectIds(img: BuiltProcess['img']): Map<string, string> {
  const out = new Map<string, string>();
  const pid = img.pid;
  for (const v of img.mem.vmas) {
    const obj = v.shm === undefined ? undefined : img.mem.shmem[v.shm];
    if (!obj) continue;
    const entry = readMaps(pid).find((m) => m.start === v.start);
    if (entry) out.set(`${obj.kind}-${entry.inode}`, obj.pages);
  }
  const files = img.resources.find((r) => r.module.name === 'files')?.state as
    | { fds?: { fd: number; kind: string; obj?: ShmemObject; pages?: string }[] }
    | undefined;
  for (const f of files?.fds ?? []) {
    if (f.kind === 'deleted' && f.pages !== undefined) {
      // A deleted file's content is saved by inode too (kinds/deleted.ts).
      try {
        const st = statSync(`/proc/${pid}/fd/${f.fd}`);
        out.set(`deleted-${st.dev}-${st.ino}`, f.pages);
      } catch {
        // the fd is missing: the files comparison says so
      }
      continue;
    }
    if (!f.obj) continue;
    try {
      out.set(`${f.obj.kind}-${statSync(`/proc/${pid}/fd/${f.fd}`).ino}`, f.obj.pages);
    } catch {
      // the fd is missing: the files comparison says so
    }
  }
  return out;
}

const SI_TIMER = -2;
const SI_KERNEL = 0x80;
const SIGALRM = 14;

/** A signal a timer queues by itself: a POSIX timer's (SI_TIMER), or ITIMER_REAL's SIGALRM (SI_KERNEL). */
const fromTimer = (x: { signo?: number; code: number }) => x.code === SI_TIMER || (x.signo === SIGALRM && x.code === SI_KERNEL);

/**
 * POSIX timers and ITIMER_REAL are armed before the check and run while it reads: a
 * timer signal queued since (beyond those in the image) is the timer working, not a
 * difference (a backend's timeout with little time left after a long freeze fires
 * before the check). Every saved signal must still be there.
 */
/**
 * Pending queues ordered by signal number, stable within one number. The kernel hands
 * out the lowest pending number first whatever the queue order, so only the order of
 * one number's entries (RT values) is visible; a timer signal the restore re-arms may
 * be queued before an older signal of a higher number is queued again.
 */
function bySignal(q: unknown): unknown {
  type Sig = { signo?: number };
  const sort = (xs: Sig[] | undefined) => xs && [...xs].sort((a, b) => (a.signo ?? 0) - (b.signo ?? 0));
  if (!q || typeof q !== 'object') return q;
  const x = q as { shared?: Sig[]; thread?: Sig[] };
  return { ...x, shared: sort(x.shared), thread: sort(x.thread) };
}

function withoutNewTimerSignals(saved: unknown, fresh: unknown): unknown {
  type Sig = { signo?: number; code: number; info: string };
  type Queues = { shared?: Sig[]; thread?: Sig[] };
  if (!saved || !fresh || typeof fresh !== 'object') return fresh;
  const s = saved as Queues;
  const f = { ...(fresh as Queues) };
  for (const q of ['shared', 'thread'] as const) {
    const left = new Map<string, number>();
    for (const x of s[q] ?? []) left.set(x.info, (left.get(x.info) ?? 0) + 1);
    const keep = (x: Sig) => {
      const n = left.get(x.info) ?? 0;
      left.set(x.info, n - 1);
      return n > 0 || !fromTimer(x);
    };
    if (f[q]) f[q] = f[q].filter(keep);
  }
  return f;
}

/** The kernel writes the current CPU into every thread's struct rseq on each return to user space. */
function rseqAreas(img: BuiltProcess['img']): { start: bigint; end: bigint }[] {
  return img.core.threads.flatMap((t, i) => {
    const state = (i === 0 ? img.core.resources['rseq'] : t.resources?.['rseq']) as { rseq?: { abiPointer: bigint; abiSize: number } | null } | undefined;
    const r = state?.rseq;
    return r ? [{ start: BigInt(r.abiPointer), end: BigInt(r.abiPointer) + BigInt(Math.max(r.abiSize, 32)) }] : [];
  });
}

function savedBlob(reader: ImageReader, name: string): Buffer | undefined {
  try {
    return reader.blob(name);
  } catch {
    return undefined;
  }
}

const regsOf = (r: Regs) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, BigInt.asUintN(64, v)]));

/** Compares one resource module's fresh reading with its saved state. */
function compareModule(c: { module: BuiltProcess['img']['resources'][number]; pid: number; got: unknown; args: CheckArgs; compare: Compare }): void {
  const { module: r, pid, args, compare } = c;
  // Most states read back exactly as saved: the schema need not read those again.
  let fresh: unknown = sameData(r.state, c.got) ? c.got : r.module.schema.parse(c.got);
  if (r.module.name === 'pending') fresh = bySignal(withoutNewTimerSignals(r.state, fresh));
  const saved = r.module.name === 'files' && args.tcpClose ? withConnectionsClosed(r.state as FilesState) : r.module.name === 'pending' ? bySignal(r.state) : r.state;
  if (r.module.name === 'files' && args.inheritFds?.length) {
    const given = { saved: saved as FilesState, inheritFds: args.inheritFds };
    compare(`process ${pid} files`, withoutGivenFds(saved as FilesState, given), withoutGivenFds(fresh as FilesState, given));
  } else {
    compare(`process ${pid} ${r.module.name}`, saved, fresh);
  }
}

/** Compares a non-leader thread's fresh reading with its saved state. */
function compareThread(c: { img: BuiltProcess['img']; saved: ThreadCpu; fresh: ThreadCpu; compare: Compare }): void {
  const { img, saved, fresh, compare } = c;
  const pid = img.pid;
  // Per-thread states as their schemas read them, like the process's.
  const parsed = (res: Record<string, unknown> | undefined) =>
    Object.fromEntries(Object.entries(res ?? {}).map(([name, v]) => [name, img.resources.find((r) => r.module.name === name)?.module.schema.parse(v) ?? v]));
  compare(`thread ${saved.tid} of ${pid} registers`, regsOf(rewoundRegs(saved.regs)), regsOf(fresh.regs));
  const savedRes = parsed(saved.resources);
  const freshRes = parsed(fresh.resources);
  if (freshRes['pending']) freshRes['pending'] = bySignal(withoutNewTimerSignals(savedRes['pending'], freshRes['pending']));
  if (savedRes['pending']) savedRes['pending'] = bySignal(savedRes['pending']);
  compare(`thread ${saved.tid} of ${pid}`, { ...saved, regs: undefined, resources: savedRes }, { ...fresh, regs: undefined, resources: freshRes });
}

export interface CheckArgs {
  built: BuiltProcess[];
  entries: readonly TreeEntry[];
  reader: ImageReader;
  /** --inherit-fd: the fds it replaced are what the user gave, not what was saved. */
  inheritFds?: readonly InheritFd[];
  /** --tcp-close: established connections were restored closed, as asked. */
  tcpClose?: boolean;
  /** --manage-cgroups=ignore: the tree was left in the restorer's cgroups on purpose. */
  manageCgroups?: 'ignore' | 'soft';
  /** The page data the restore wrote, as it wrote it: compared with instead of the page files where it holds the pages. */
  keptPages?: KeptPages;
  /** The restore's scratch area in each process, left mapped (RemoteTask.handOverScratch): read through it, then unmapped. */
  scratch?: ReadonlyMap<number, { addr: bigint; size: number; code: boolean } | undefined>;
}

/** Reads every restored process back and compares it with its images; throws CHECK_FAILED naming the differences. */
export function checkRestored(args: CheckArgs): void {
  const { built, entries, reader } = args;
  const pids = built.map((b) => b.img.pid);
  const descriptions = descriptionIds(pids);
  const links = linkCounts(pids);
  const objectsSeen = new Set<string>();
  const diffs: string[] = [];
  const compare = comparer(diffs);
  // `built` lists children before parents: the ancestors' page files are gathered first.
  // The bytes the restore wrote, where it kept them (kept-pages.ts); else read from the file.
  const keptIn = (path: string) => (args.keptPages ? (offset: number, len: number) => args.keptPages!.get(path, offset, len) : undefined);
  const savedPagesOf = new Map<number, SavedPages>(built.map(({ img }) => [img.pid, { runs: img.pages.runs, open: () => img.pages.fd(), kept: keptIn(img.pages.path) }]));
  const layersOf = (img: { pages: PageReader }): SavedPages[] => img.pages.layers.slice(1).map((l) => ({ runs: l.runs, open: () => l.reader.fd(), kept: keptIn(l.reader.path) }));
  const chainOf = new Map<number, SavedPages[]>(built.map(({ img }) => [img.pid, layersOf(img)]));
  const parentOf = new Map(entries.map((e) => [e.pid, e.ppid]));
  // A group or session led from outside the dump (the shell's job) is the restorer's,
  // or the terminal's with --shell-job: only "outside" is compared, not its number.
  const inTree = new Set(entries.map((e) => e.pid));
  const rootStat = readStat(entries[0]!.pid);
  const saved = (id: number) => (inTree.has(id) ? id : 'outside');
  const restored = (id: number, rootId: number) => (inTree.has(id) || id !== rootId ? id : 'outside');
  for (const e of entries) {
    if (e.zombie) {
      // Still there for its parent's wait (a parent ignoring SIGCHLD would have let the kernel reap it).
      compare(`process ${e.pid} (a zombie)`, { state: 'Z', ppid: e.ppid }, zombieState(e.pid));
      continue;
    }
    const stat = readStat(e.pid);
    compare(`process ${e.pid} tree`, { pgid: saved(e.pgid), sid: saved(e.sid) }, { pgid: restored(stat.pgrp, rootStat.pgrp), sid: restored(stat.session, rootStat.session) });
    if (e.ppid !== 0) compare(`process ${e.pid} exit signal`, e.exitSignal ?? SIGCHLD, stat.exitSignal);
  }
  for (const b of built) {
    const { img } = b;
    const pid = img.pid;
    // The check reads only: no disposition changes while it borrows a thread.
    const remote = new RemoteTask(pid, { site: b.remote.site, dispositionsFixed: true });
    const proc = new SeizedProcess(pid);
    for (const tid of [pid, ...b.threads.map((t) => t.thread.tid)]) proc.tasks.set(tid, { tid, stop: { kind: 'stopped', signal: 0, event: 0 } as never, groupStopped: false });
    const checks: PageCheck[] = [];
    const objectIds = savedObjectIds(img);
    // Where ctx.blobs.put reports: a step of gatherReads reports only once its reading counts.
    let blobDiffs = diffs;
    const ctx: DumpContext = {
      pid,
      proc,
      remote,
      blobs: {
        put: (name, data) => {
          // A blob the images lack shows as a difference in the state that names it.
          const saved = savedBlob(reader, name);
          if (saved && !saved.equals(data) && !/-tcp\.(send|recv)$/.test(name)) blobDiffs.push(`process ${pid}: saved data ${name} differs after restore`);
          return name;
        },
      },
      descriptionOf: (fd) => descriptions.get(pid)?.get(fd),
      treeDescriptions: descriptions,
      checking: true,
      linkCount: (link) => links.get(link) ?? 0,
      inTree: (p) => inTree.has(p),
      pages: (fresh): ObjectPageSink | undefined => {
        const id = objectIds.get(fresh) ?? fresh;
        if (objectsSeen.has(id)) return undefined;
        objectsSeen.add(id);
        const p = reader.pages(id);
        const c = new PageCheck(`shared memory ${id}`, { runs: p.runs, open: () => p.fd() }, { diffs });
        checks.push(c);
        return { append: (offset, data) => c.append(offset, data), close: () => c.finish() };
      },
      warn: () => {},
      // Sockets restored connected outside the tree were allowed by the restore itself.
      extUnixSk: true,
    };
    /** A step of gatherReads: reads with `read`, then compares what it read (see gatherReads). */
    const step = <T>(read: () => T, use: (v: T) => void) => () => {
      const mine: string[] = [];
      blobDiffs = mine;
      let v: T;
      try {
        v = read();
      } finally {
        blobDiffs = diffs;
      }
      return () => {
        diffs.push(...mine);
        use(v);
      };
    };
    const threads: RemoteTask[] = [];
    let mem: ReturnType<typeof dumpMemory> | undefined;
    // Memory is read last, once ckpt's scratch area is gone: the mlockall probe (only where
    // the images have MCL_FUTURE) is an injected call, made before the registers are put back.
    const readMemory = () => {
      const saved = savedPagesOf.get(pid)!;
      const ancestors: SavedPages[] = [];
      for (let p = img.entry.ppid; savedPagesOf.has(p); p = parentOf.get(p) ?? 0) ancestors.push(savedPagesOf.get(p)!, ...chainOf.get(p)!);
      const check = new PageCheck(`process ${pid} memory`, saved, { diffs, ignored: rseqAreas(img), ancestors, chain: chainOf.get(pid), pid, lazy: b.lazy });
      // Without `parent`: every present page is read, and one still shared with an ancestor is compared with its saved copy.
      // The program break was read with the other injected reads.
      mem = dumpMemory(ctx, check, { probeLockFuture: img.mem.lockFuture !== undefined, skipBrk: true });
      check.finish();
    };
    // The process is held throughout: a /proc file several collectors read is read once (procfs.ts).
    try {
      keepProcReads(pid, () => {
        // The restore's scratch area, left mapped for us (two stops saved), or one of ours: big enough for a batch.
        const handed = args.scratch?.get(pid);
        if (handed) remote.adoptScratch(handed);
        remote.scratch(BATCH_SCRATCH);
        compare(`process ${pid} registers`, regsOf(resumeRegs(img.core.threads[0]!.regs)), regsOf(remote.savedRegs));
        compare(`process ${pid} signal mask`, img.mask, remote.savedMask);
        compare(`process ${pid} xstate`, img.core.threads[0]!.xstate, ptrace.getRegset(pid, NT.X86_XSTATE).toString('base64'));
        // Every collector's injected reads (and the break) with one stop per thread (gatherReads).
        let brk = 0n;
        const steps = [step(() => callsOut(remote, [{ nr: NR.brk, name: 'brk', size: 0, args: () => [0] }])[0]!.ret, (got) => void (brk = BigInt.asUintN(64, got)))];
        for (const r of img.resources) {
          if (r.module.name === 'cgroup' && args.manageCgroups === 'ignore') continue;
          steps.push(step(() => r.module.dump(ctx), (got) => compareModule({ module: r, pid, got, args, compare })));
        }
        gatherReads(remote, steps);
        for (const t of b.threads) {
          const tremote = new RemoteTask(t.thread.tid, { site: remote.site, dispositionsFixed: true });
          threads.push(tremote);
          tremote.shareScratch(remote);
          gatherReads(tremote, [step(() => readThread({ ...ctx, remote: tremote }), (fresh) => compareThread({ img, saved: t.thread, fresh, compare }))]);
        }
        proc.undo.runAll();
        // As the restore left them: new threads' registers set where they stand (threads.ts).
        for (const t of threads.splice(0)) t.finish({ direct: true });
        if (img.mem.lockFuture !== undefined) readMemory();
        // Puts the registers back, the scratch area's munmap on the way (RemoteTask.finish).
        remote.finish();
        if (!mem) readMemory();
        const state = mem!.state;
        state.mm.brk = brk;
        // VmFlags "um": the lazy-pages server's userfaultfd registration, gone once every page is in.
        const vmas = b.lazy.length > 0 ? state.vmas.map((v) => ({ ...v, flags: v.flags.filter((f) => f !== 'um') })) : state.vmas;
        // Merged only when the areas differ as they are (the kernel merged some, or the restore is wrong).
        if (!sameData(img.mem, { ...state, vmas })) compare(`process ${pid} memory layout`, { ...img.mem, vmas: coalesced(img.mem.vmas) }, { ...state, vmas: coalesced(vmas) });
      });
    } finally {
      proc.undo.runAll();
      for (const t of threads) t.finish({ direct: true });
      remote.finish();
    }
    for (const c of checks) c.finish();
  }
  if (diffs.length > 0) {
    const shown = diffs.slice(0, MAX_REPORTED).join('; ');
    throw new CkptError('CHECK_FAILED', `Cannot restore: the restored processes differ from the images: ${shown}${diffs.length > MAX_REPORTED ? ` (and ${diffs.length - MAX_REPORTED} more)` : ''}`);
  }
}
