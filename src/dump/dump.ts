/**
 * Dump orchestration for one process: seize it, collect every resource while it is
 * stopped, write the images, then kill it (or let it run on with leaveRunning). On
 * any failure the images written so far are removed and the process is released
 * exactly as it was.
 */
import { release as kernelRelease } from 'node:os';
import { monotonicMs } from '../common/clock.js';
import { CkptError } from '../common/errors.js';
import { readChildren, readStat, readStatus } from '../proc/index.js';
import { isErrno, kill, NR, SIG } from '../sys/index.js';
import { checkInterrupted, deferSignals, findSyscallSite, RemoteTask, type SeizedProcess } from '../infect/index.js';
import { descriptionIds, linkCounts, type DescriptionIds } from '../resources/sharing/descriptions.js';
import { killTree, releaseTree, seizeTree, type SeizedTree } from './tree.js';
import { ImageWriter } from '../images/index.js';
import { ObjectCopies } from '../resources/memory/object-copy.js';
import { dumpMemory, type BackgroundPlan, type MemoryDumpStats } from '../resources/memory/dump.js';
import type { ParentMemory } from '../resources/memory/cow.js';
import type { MemoryState, ShmemObject } from '../resources/memory/state.js';
import { dumpCpu, restartInterruptedWait } from '../resources/thread/cpu.js';
import { refuseSyscallDispatch, releaseSandboxProbes } from '../resources/process/knobs-refused.js';
import { readStopReports } from '../resources/process/stop-report.js';
import { dumpThread } from '../resources/thread/threads.js';
import { coreImage, mmImage, TOOL_IMAGE, type CoreImage, type TreeEntry } from '../resources/images.js';
import { RESOURCES } from '../resources/registry.js';
import { dumpSysvIpc, IPC_IMAGE } from '../resources/ipc/index.js';
import { lockNetwork, NETLOCK_IMAGE, removeStaleLocks, tcpEndpoints, waitAcceptQueues, type LockedPort, type NetLock } from '../resources/net/lock.js';
import type { DumpContext, ObjectPageSink } from '../resources/types.js';
import { MemoryTracking, TRACKING_IMAGE } from '../resources/memory/track.js';
import { resumeTracking } from './tracking.js';
import { BackgroundCopy } from '../resources/memory/background.js';
import { withImageWriter } from './page-server.js';
import { armBackground } from './background.js';
import type { DumpOptions, DumpResult } from './options.js';

export type { DumpEvent, DumpOptions, DumpResult } from './options.js';

/**
 * A stopped process (SIGSTOP, SIGTSTP…) cannot run injected syscalls: resuming it only
 * puts it back into its group stop. SIGCONT ends the group stop (the threads stay in
 * our ptrace stops); the SIGCONT itself stays pending, blocked by RemoteTask, and is
 * taken out of the queue with an injected sigtimedwait so it neither runs a handler
 * nor is saved as pending. The tree records the process as stopped; it is stopped
 * again after a leave-running dump and after restore.
 */
export function leaveGroupStop(proc: SeizedProcess, remote: RemoteTask): void {
  kill(proc.pid, SIG.SIGCONT);
  const set = Buffer.alloc(8);
  set.writeBigUInt64LE(1n << BigInt(SIG.SIGCONT - 1));
  const zero = Buffer.alloc(16);
  remote.call(NR.rt_sigtimedwait, [remote.put(set, 0), 0, remote.put(zero, 64), 8], 'rt_sigtimedwait(SIGCONT)');
  proc.undo.push(`stop ${proc.pid} again`, () => kill(proc.pid, SIG.SIGSTOP));
}

/** Object page files started per image set: an object shared by processes is saved once. */
const startedPages = new WeakMap<ImageWriter, Set<string>>();

function objectPages(w: ImageWriter, args: { id: string; opts: DumpOptions; copies: ObjectCopies }): ObjectPageSink | undefined {
  let started = startedPages.get(w);
  if (!started) startedPages.set(w, (started = new Set()));
  if (started.has(args.id)) return undefined;
  started.add(args.id);
  const pw = w.pages(args.id, { checksum: args.opts.pageChecksums ?? false });
  // Checksums need the bytes, a page server takes appends: those copy at once.
  return args.opts.pageChecksums || args.opts.pageServer ? pw : args.copies.sink(pw);
}

interface CollectArgs {
  w: ImageWriter;
  opts: DumpOptions;
  warnings: string[];
  descriptions: DescriptionIds;
  links: Map<string, number>;
  /** Every process of the tree, zombies included. */
  members: ReadonlySet<number>;
  /** The parent's memory, dumped already: pages still shared copy-on-write with it are left out. */
  parent?: ParentMemory;
  progress?: (bytes: number) => void;
  /** Memory tracking of an incremental dump (or one arming it for the next). */
  tracking?: MemoryTracking;
  /** A background dump: pages are planned and protected here, copied once the tree runs. */
  background?: BackgroundCopy;
  /** Shared memory objects described so far (DumpContext.shmemObjects). */
  shmemObjects: Map<string, ShmemObject>;
  /** Its stopped children in the tree (not dumped yet: still in their group stop): their stop reports are read here. */
  stoppedChildren: TreeEntry[];
  /** Their pages, copied beside the rest of the dump. */
  copies: ObjectCopies;
}

function collect(proc: SeizedProcess, args: CollectArgs): { stats: MemoryDumpStats; mem: MemoryState; memoryMs: number } {
  const { w, opts, warnings } = args;
  const pid = proc.pid;
  // Before anything is injected (see refuseSyscallDispatch).
  for (const tid of proc.tids) refuseSyscallDispatch({ pid, tid });
  // Before any injected call: what it writes must not wait on the background's protection.
  args.background?.spare(pid, proc.tids);
  for (const tid of proc.tids) restartInterruptedWait(tid);
  const remote = new RemoteTask(pid, { site: findSyscallSite(pid), recoverable: true });
  proc.undo.push(`restore registers of ${pid}`, () => remote.finish());
  if (proc.tasks.get(pid)?.groupStopped) leaveGroupStop(proc, remote);
  const ctx: DumpContext = {
    pid,
    proc,
    remote,
    blobs: { put: (name, data) => (w.blob(name, data), name) },
    descriptionOf: (fd) => args.descriptions.get(pid)?.get(fd),
    treeDescriptions: args.descriptions,
    linkCount: (link) => args.links.get(link) ?? 0,
    inTree: (p) => args.members.has(p),
    pages: (id) => objectPages(w, { id, opts, copies: args.copies }),
    shmemObjects: args.shmemObjects,
    progress: args.progress,
    warn: (m) => warnings.push(m),
    extUnixSk: opts.extUnixSk,
    tcpClose: opts.tcpClose,
    skipInFlight: opts.skipInFlight,
  };
  const resources: Record<string, unknown> = {};
  for (const { module } of RESOURCES) {
    checkInterrupted();
    resources[module.name] = module.dump(ctx);
  }
  if (args.stoppedChildren.length > 0) {
    const reports = readStopReports(remote, args.stoppedChildren.map((c) => c.pid));
    for (const c of args.stoppedChildren) c.stopReport = reports.get(c.pid);
  }
  checkInterrupted();
  const memStart = monotonicMs();
  const pw = w.pages(pid, { checksum: opts.pageChecksums ?? false });
  const tracker = args.tracking?.forProcess(pid, () => remote);
  let mem: ReturnType<typeof dumpMemory>;
  try {
    const bg = args.background;
    const later: BackgroundPlan | undefined = bg ? { armed: bg.isArmed(pid), add: (plan) => bg.add(pid, { remote, ...plan, pw }), readAreas: (c) => bg.areasAtFreeze(c) } : undefined;
    mem = dumpMemory(ctx, pw, { parent: args.parent, tracker, arm: keepsTracking(opts), later });
  } finally {
    tracker?.close();
  }
  // A background dump closes it once its pages are in.
  if (!args.background) pw.close();
  const memoryMs = monotonicMs() - memStart;
  const others = proc.tids.filter((t) => t !== pid).map((tid) => dumpThread(ctx, tid));
  remote.finish();
  const core: CoreImage = { pid, threads: [{ ...dumpCpu(pid), comm: undefined }, ...others], resources };
  w.write({ ...coreImage(pid), value: core });
  w.write({ ...mmImage(pid), value: mem.state });
  return { stats: mem.stats, mem: mem.state, memoryMs };
}

/**
 * SIGINT, SIGTERM, SIGHUP and SIGPIPE are deferred while the dump runs (infect/
 * interrupt.ts): one that comes before the images are committed rolls the dump back
 * (the target runs on as before, no image is left); one that comes after lets the dump
 * finish. Either way it is then delivered to us under its old disposition.
 */
export function dump(pid: number, opts: DumpOptions): DumpResult {
  if (!Number.isInteger(pid) || pid <= 0) throw new CkptError('USAGE', `Cannot dump process ${pid}: not a valid PID`);
  return deferSignals({ what: `dump process ${pid}`, onSignal: opts.onSignal }, () => {
    try {
      return dumpTree(pid, opts);
    } finally {
      releaseSandboxProbes();
    }
  });
}

/** Tracking is left armed for a next round only when the tree runs on. */
function keepsTracking(opts: DumpOptions): boolean {
  return (opts.trackMem ?? false) && (opts.leaveRunning ?? false);
}

/** How long a dump waits for the program to accept the connections in its listeners' queues. */
const ACCEPT_WAIT_MS = 1000;

/** What a background dump cannot be combined with, said before anything is touched. */
function checkBackground(pid: number, opts: DumpOptions): void {
  if (!opts.background) return;
  const no = (why: string) => new CkptError('USAGE', `Cannot dump process ${pid} in the background: ${why}`);
  if (!opts.leaveRunning) throw no('--background needs --leave-running (-R): a dump that kills the process gains nothing from copying while it runs');
  if (opts.parent || opts.trackMem) throw no('--background with --prev-images-dir or --track-mem is not supported yet (one area takes one userfaultfd, and the tracking holds it)');
  if (opts.pageChecksums) throw no('--background with --page-checksums is not supported yet (pages are written out of order)');
  if (opts.pageServer) throw no('--background with --page-server is not supported yet (pages are written out of order; a page server takes appends only)');
}

function dumpTree(pid: number, opts: DumpOptions): DumpResult {
  checkBackground(pid, opts);
  const t0 = monotonicMs();
  const warnings: string[] = [];
  return withImageWriter(opts.imagesDir, { target: opts.pageServer, fn: (w) => dumpInto(w, { pid, opts, t0, warnings }) });
}

function dumpInto(w: ImageWriter, args: { pid: number; opts: DumpOptions; t0: number; warnings: string[] }): DumpResult {
  const { pid, opts, t0, warnings } = args;
  const background = opts.background ? new BackgroundCopy() : undefined;
  const copies = new ObjectCopies();
  let running = true;
  let unlocked = false;
  let tracking: MemoryTracking | undefined;
  let tree: SeizedTree | undefined;
  let frozenAt = 0;
  let lock: NetLock | undefined;
  const method = opts.networkLock ?? 'nftables';
  const portsOf = (links: Map<string, number>) => (method === 'skip' ? [] : tcpEndpoints(links.keys(), { listenersOnly: opts.tcpClose ?? false }));
  try {
    if (opts.parent) {
      const resumed = resumeTracking(opts.imagesDir, opts.parent);
      tracking = resumed.tracking;
      w.setParent(resumed.ref);
    } else if (keepsTracking(opts)) tracking = new MemoryTracking();
    // The lock is taken before the freeze where it can be (running nft costs ~15 ms on an idle
    // machine, far more on a loaded one), on the ports the tree has now; checked again once frozen.
    const earlyLinks = liveLinkCounts(treeNow(pid));
    const early = portsOf(earlyLinks);
    if (method !== 'skip' && early.length > 0) lock = lockNetwork(pid, { method, ports: early });
    // Locked, the listeners' accept queues only drain: let the program accept what waits there.
    if (lock) waitAcceptQueues(earlyLinks.keys(), { timeoutMs: ACCEPT_WAIT_MS });
    // Write-protected while the tree runs, so that the freeze protects only what is written from now on.
    if (background) armBackground(pid, { background, timeoutMs: opts.timeoutMs });
    tree = seizeTree(pid, { timeoutMs: opts.timeoutMs, onWait: background ? () => background.serveWhileSeizing() : undefined });
    running = false;
    frozenAt = monotonicMs();
    const event = opts.onEvent ?? (() => {});
    event({ phase: 'frozen', pids: tree.entries.map((e) => e.pid), ms: frozenAt - t0 });
    const alive = tree.entries.filter((e) => !e.zombie).map((e) => e.pid);
    const descriptions = descriptionIds(alive);
    const links = linkCounts(alive);
    const members = new Set(tree.entries.map((e) => e.pid));
    // Before any socket queue is read: what arrives later must not be acknowledged (resources/net/lock.ts).
    const ports = portsOf(links);
    const held = new Set(lock?.state.ports.map(portKey));
    if (method !== 'skip' && ports.some((p) => !held.has(portKey(p)))) {
      lock = lockNetwork(pid, { method, ports: [...(lock?.state.ports ?? []), ...ports.filter((p) => !held.has(portKey(p)))] });
    }
    // Namespace objects the tree uses, once per image set (it refuses SEM_UNDO before anything changes).
    const tids = alive.flatMap((p) => tree!.procs.get(p)?.tids ?? []);
    w.write({ ...IPC_IMAGE, value: dumpSysvIpc({ pids: alive, tids, blob: (name, data) => w.blob(name, data) }) });
    const stats = { pages: 0, bytes: 0, bytesByTarget: 0, memoryMs: 0, inParent: 0 };
    const mems = new Map<number, MemoryState>();
    const progress = progressOf(alive, opts);
    const shmemObjects = new Map<string, ShmemObject>();
    for (const e of tree.entries) {
      if (e.zombie) continue;
      checkInterrupted();
      const parentMem = mems.get(e.ppid);
      const parent = parentMem ? { pid: e.ppid, state: parentMem } : undefined;
      const stoppedChildren = tree.entries.filter((c) => c.ppid === e.pid && c.stopped && !c.zombie);
      const { stats: s, mem, memoryMs } = collect(tree.procs.get(e.pid)!, { w, opts, warnings, descriptions, links, members, parent, progress, tracking, background, shmemObjects, stoppedChildren, copies });
      mems.set(e.pid, mem);
      stats.pages += s.pages;
      stats.bytes += s.bytes;
      stats.memoryMs += memoryMs;
      stats.inParent += s.inParent ?? 0;
      event({ phase: 'process', pid: e.pid, pages: s.pages, bytes: s.bytes, memoryMs, ms: monotonicMs() - t0 });
    }
    // The shared objects' pages, copied meanwhile: in before the tree runs again.
    copies.join();
    const image = { tool: 'ckpt' as const, rootPid: pid, pids: tree.entries.map((e) => e.pid), tree: tree.entries };
    w.write({ ...TOOL_IMAGE, value: { ...image, kernel: kernelRelease(), createdAt: new Date().toISOString() } });
    // A killed tree's sockets stay locked until the restore has them back (peers see silence, not resets).
    if (lock && !opts.leaveRunning) w.write({ ...NETLOCK_IMAGE, value: lock.state });
    if (tracking && keepsTracking(opts)) w.write({ ...TRACKING_IMAGE, value: tracking.keep(alive, pid) });
    let released = 0;
    if (background) {
      // Everything but the pages is written: the tree runs on while they are copied.
      background.protect();
      releaseTree(tree);
      running = true;
      released = monotonicMs();
      unlockAfterDump(lock, warnings);
      unlocked = true;
      background.run({ onBytes: progress });
      background.finish();
      stats.pages += background.stats.scannedPages;
      stats.bytes += background.stats.scannedPages * 4096;
    }
    // The last point of return: once committed, the dump finishes (kill or release) whatever comes.
    checkInterrupted();
    w.commit();
    // The set is complete and the tree still frozen (CRIU's post-dump): a throw here
    // releases the tree as any failure does, and leaves the complete set.
    event({ phase: 'written', ms: monotonicMs() - t0 });
    if (opts.leaveStopped) {
      // Queued while every thread is in its ptrace stop: detaching delivers it first thing.
      for (const e of tree.entries) if (!e.zombie) kill(e.pid, SIG.SIGSTOP);
      releaseTree(tree);
    } else if (background) {
      // released already
    } else if (opts.leaveRunning) releaseTree(tree);
    else {
      killTree(tree, {
        sent: () => {
          try {
            event({ phase: 'killed', ms: monotonicMs() - t0 });
          } catch (e) {
            warnings.push(`after the kill: ${(e as Error).message}`);
          }
        },
      });
    }
    if (!background) released = monotonicMs();
    // Kept for the next round, or ended (the kernel unregisters the areas as the last fd
    // closes): after the tree runs again, since it need not wait for the old holder's exit.
    if (keepsTracking(opts)) tracking?.commit();
    else tracking?.release();
    if (opts.leaveRunning && !background) unlockAfterDump(lock, warnings);
    if (lock) removeStaleLocks(lock.state);
    const end = monotonicMs();
    const networkLock = lock && !opts.leaveRunning ? { name: lock.state.name, method: lock.state.method, ports: lock.state.ports.length } : undefined;
    return { pid, imagesDir: opts.imagesDir, processes: tree.entries.length, pids: tree.entries.map((e) => e.pid), ...stats, frozenMs: released - frozenAt, freezingMs: frozenAt - t0, totalMs: end - t0, warnings, networkLock, background: background?.stats };
  } catch (e) {
    // First: a copy still running writes into a page file abort() removes. Its own failure
    // must not skip the rest of this cleanup (the tree is still frozen and traced).
    try {
      copies.cancel();
    } catch (c) {
      if (e instanceof Error) e.message += ` (also: ${(c as Error).message})`;
    }
    // The protection goes next: a released thread must not wait on a page nobody copies;
    // and its page writes end before abort() closes the page files.
    background?.close();
    w.abort();
    if (tree && !running) releaseTree(tree);
    tracking?.release({ failed: true });
    if (lock && !unlocked) unlockAfterDump(lock, e instanceof Error ? { push: (m: string) => void (e.message += ` (also: ${m})`) } : []);
    if (tree && (isErrno(e, 'ESRCH') || !isAlive(pid))) throw new CkptError('NO_PROCESS', `Cannot dump process ${pid}: it exited during the dump`, { cause: e });
    throw e;
  }
}

const portKey = (p: LockedPort) => `${p.ip} ${p.addr} ${p.port}`;

/** The tree's processes as /proc shows them before the freeze (it may change: the seize finds the real one). */
function treeNow(root: number): number[] {
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    const p = todo.pop()!;
    try {
      todo.push(...readChildren(p));
      out.push(p);
    } catch {
      // gone, or not ours: the seize says so
    }
  }
  return out;
}

/** linkCounts of a tree that still runs: a process that exits meanwhile is left out (the seize decides about it). */
function liveLinkCounts(pids: readonly number[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const p of pids) {
    let mine: Map<string, number>;
    try {
      mine = linkCounts([p]);
    } catch {
      continue;
    }
    for (const [link, n] of mine) counts.set(link, (counts.get(link) ?? 0) + n);
  }
  return counts;
}

/** Lifts the lock of a dump whose tree runs on; a failure to do so is said, not thrown (the dump itself is done or failed already). */
function unlockAfterDump(lock: NetLock | undefined, said: { push(m: string): unknown }): void {
  if (!lock) return;
  try {
    lock.unlock();
  } catch (e) {
    said.push(`the network lock ${lock.state.name} (${lock.state.method}) could not be lifted: ${(e as Error).message}; the tree's TCP ports stay blocked until it is removed (docs/cli.md, --network-lock)`);
  }
}

/** Progress in bytes against the resident memory of the tree (an estimate: pages shared or file-backed are not written). */
function progressOf(pids: number[], opts: DumpOptions): ((n: number) => void) | undefined {
  const report = opts.onProgress;
  if (!report) return undefined;
  let total = 0;
  for (const pid of pids) {
    try {
      total += Number.parseInt(readStatus(pid).raw['RssAnon'] ?? '0', 10) * 1024;
    } catch {
      // gone: the dump will say so
    }
  }
  let bytes = 0;
  return (n) => {
    bytes += n;
    report({ bytes, total: Math.max(total, bytes) });
  };
}

/**
 * False when pid is gone, a zombie, or has a SIGKILL pending (a task being killed can
 * still look running): then whatever failed, failed because it died.
 */
function isAlive(pid: number): boolean {
  try {
    const { state } = readStat(pid);
    if (state === 'Z' || state === 'X') return false;
    const { sigPnd, shdPnd } = readStatus(pid);
    return (((sigPnd | shdPnd) >> 8n) & 1n) === 0n;
  } catch {
    return false;
  }
}
