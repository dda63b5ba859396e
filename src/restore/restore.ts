/**
 * Restore orchestration: read and check every image first (nothing is created for a
 * bad image set), start a blank process, create the tree with the old PIDs (sessions
 * and groups as they were), turn zombies back into zombies, rebuild every process by
 * injected syscalls, load registers last and let the whole tree run at once. Any
 * failure kills everything that was built and leaves the images untouched.
 */
import { join } from 'node:path';
import { monotonicMs } from '../common/clock.js';
import { kill, SIG } from '../sys/index.js';
import { checkInterrupted, deferSignals, RemoteTask, RESTORE_PTRACE_OPTIONS, seizeProcess, Undo, type SeizedProcess } from '../infect/index.js';
import { type Channel, ImageReader, mirrorSet, PAGE_SIZE, RemotePages, type PageSourceAddress } from '../images/index.js';
import { connectPageServer } from '../resources/page-server-connect.js';
import { CkptError } from '../common/errors.js';
import type { RestoreContext } from '../resources/types.js';
import { LocalObjects } from '../resources/shared.js';
import { parseInheritFd } from '../resources/files/kinds/inherit.js';
import type { TreeEntry } from '../resources/images.js';
import { BLANK_SYSCALL_SITE, reapBlank, startBlank } from './blank.js';
import { becomeZombie, cloneProcess, dropExitSignal, exitSignalOf, joinGroup, withChildrenKept } from './create.js';
import type { PendingState } from '../resources/process/pending.js';
import type { SigactionsState } from '../resources/process/sigactions.js';
import { isKernelArea } from '../resources/memory/state.js';
import { checkRestored } from './check.js';
import { KeptPages } from '../resources/memory/kept-pages.js';
import { finishTerminals } from '../resources/files/ctty.js';
import { asShellJob, takeTerminal, type TerminalJob } from './shell-job.js';
import { loadTree, type ProcessImages } from './images.js';
import { IPC_IMAGE, restoreSysvIpc } from '../resources/ipc/index.js';
import { NETLOCK_IMAGE, unlockNetwork, type NetworkLockMethod } from '../resources/net/lock.js';
import { planSysvSegments, type SavedSegment } from '../resources/memory/sysv.js';
import { waitPidFree } from './pid.js';
import { createPidfile } from './pidfile.js';
import { LazyPagesClient } from './lazy/client.js';
import { letRun, loadRegisters, rebuildFiles, rebuildProcess, rebuildRest, type CreatedProcess } from './process.js';
import { stopAgain } from './stopped.js';

export interface RestoreOptions {
  imagesDir: string;
  shellJob?: boolean;
  /**
   * CRIU's `--inherit-fd`: `fd[N]:KEY` gives our fd N to every fd the dump recorded as
   * KEY (`pipe:[123]`, `socket:[456]`, a path): how a standard fd that led outside the
   * tree is restored.
   */
  inheritFd?: readonly string[];
  /** CRIU's `--ext-unix-sk`: unix sockets the dump saved connected to a name outside it are connected to that name again. */
  extUnixSk?: boolean;
  /**
   * CRIU's `--manage-cgroups`: by default ('soft') each process goes back into its
   * saved cgroup (which must exist); 'ignore' leaves the tree in the restorer's.
   */
  manageCgroups?: 'ignore' | 'soft';
  pidfile?: string;
  /** Verify page checksums before restoring (when the dump wrote them). */
  verifyPages?: boolean;
  /**
   * Before letting the processes run, read them back and compare with the images
   * (check.ts); any difference fails the restore. Default: on when the environment
   * has CKPT_CHECK=1 (the test suite sets it), else off.
   */
  check?: boolean;
  /**
   * The images come from a trusted source even if another user owns them: restore the
   * credentials they ask for (up to the restorer's own) and open their paths with the
   * restorer's privilege. Off by default (docs/security.md).
   */
  trustImages?: boolean;
  /** As DumpOptions.onSignal: called before a signal deferred during the restore is delivered again. */
  onSignal?: (error?: unknown) => void;
  /**
   * CRIU's `--network-lock`: `skip` leaves the lock a dump left (image `netlock`) in
   * place; otherwise it is lifted once the tree runs with every socket back.
   */
  networkLock?: NetworkLockMethod;
  /** CRIU's --tcp-established: accepted; established connections are always restored. */
  tcpEstablished?: boolean;
  /** CRIU's --tcp-close: established TCP connections are restored closed (EOF on read, EPIPE on write). */
  tcpClose?: boolean;
  /** Leave the processes stopped (SIGSTOP) instead of resuming them, as CRIU's --leave-stopped. */
  leaveStopped?: boolean;
  /**
   * CRIU's --lazy-pages: private anonymous pages are not filled before the processes run;
   * a lazy-pages server process (restore/lazy/) copies them in on fault and in the
   * background, and exits once all are in. A process with children in the tree is
   * filled whole (they inherit its memory when they are created).
   */
  lazyPages?: boolean;
  /** argv that runs ckpt's `lazy-pages` entry (the CLI passes its own); default: the library's entry script. */
  lazyPagesCommand?: readonly string[];
  /** With lazyPages: copy the pages no one touches in the background (default); off, pages come only on fault. */
  lazyPrefetch?: boolean;
  /** Log of the lazy-pages server and guard; default DIR/lazy-pages.log. */
  lazyPagesLog?: string;
  /**
   * CRIU's `lazy-pages --page-server`: the images are on a page server
   * (`ckpt page-server --lazy-pages`); imagesDir (new or empty) gets their metadata,
   * and page data comes from the server as it is needed: with lazyPages, on fault and by
   * prefetch, until all is in (the server then stops); if the server dies or the
   * connection drops first, the processes are killed (never left waiting on a fault).
   */
  pageServer?: PageSourceAddress & {
    /** A connection to it already made (ckpt migrate's), used first and never closed here; `address`/`port` for new ones. */
    channel?: Channel;
  };
  /**
   * A two-phase commit (ckpt migrate's destination): called once the tree is built and
   * frozen, after the 'built' event. 'run' lets it go; 'stop' lets it go stopped (SIGSTOP
   * first, as leaveStopped) and leaves the dump's network lock in place, for a tree whose
   * fate someone else must decide; a throw kills it, as any failure does.
   */
  confirm?: () => 'run' | 'stop';
  /** Page data restored so far and the total of the image set, in bytes. */
  onProgress?: (p: { bytes: number; total: number }) => void;
  /**
   * Each phase as it ends (logs, CRIU's action scripts). A throw before 'running' fails
   * the restore, which kills everything built, as any failure does.
   */
  onEvent?: (e: RestoreEvent) => void;
}

/**
 * Phases of a restore, with ms since it started: every image read and checked; a
 * process's memory phase starting (created, its earlier state set); each process rebuilt; the whole tree
 * built with its registers loaded, not yet running (CRIU's pre-resume point); the tree
 * let go (with lazy pages, before ckpt waits for the lazy-pages processes to hold their
 * userfaultfds); the restore done, the tree running.
 */
export type RestoreEvent =
  | { phase: 'read'; pids: number[]; pages: number; bytes: number; ms: number }
  | { phase: 'memory'; pid: number; ms: number }
  | { phase: 'process'; pid: number; ms: number }
  | { phase: 'built'; ms: number }
  | { phase: 'let-go'; ms: number }
  | { phase: 'running'; ms: number };

export interface RestoreResult {
  /** PID of the root of the restored tree. */
  pid: number;
  processes: number;
  /** Pages restored from the page files (all processes), and their bytes. */
  pages: number;
  bytes: number;
  totalMs: number;
  warnings: string[];
  /** --shell-job on a terminal: gives the terminal back to ckpt once the job is done (restore/shell-job.ts). */
  terminal?: TerminalJob;
  /** With lazyPages: the processes that serve the pages now, and their log. */
  lazyPages?: { serverPid: number; guardPid: number; log: string };
}

/** Process groups, once every process exists: leaders first, then members. */
/** Every SysV segment the processes attach, with its page file (each once). */
function savedSegments(procs: Iterable<ProcessImages>, args: { reader: ImageReader; fetch?: RemotePages }): SavedSegment[] {
  const { reader, fetch } = args;
  const out = new Map<number, SavedSegment>();
  for (const img of procs) {
    for (const o of img.mem.shmem) {
      if (o.kind !== 'sysv' || !o.sysv || out.has(o.sysv.id)) continue;
      const p = reader.pages(o.pages);
      fetch?.ensureRuns(p.path, p.runs);
      out.set(o.sysv.id, { seg: o.sysv, size: o.size, pages: { path: p.path, runs: p.runs } });
    }
  }
  return [...out.values()];
}

function joinGroups(entries: TreeEntry[], args: { remotes: Map<number, RemoteTask>; warn: (m: string) => void }): void {
  const pids = new Set(entries.map((e) => e.pid));
  const root = entries[0]!;
  const leaders = entries.filter((e) => e.pgid === e.pid && e.sid !== e.pid);
  const members = entries.filter((e) => e.pgid !== e.pid && pids.has(e.pgid));
  for (const e of [...leaders, ...members]) joinGroup(args.remotes.get(e.pid)!, e);
  for (const e of entries) {
    if (!pids.has(e.pgid) && e.pgid !== root.pgid) args.warn(`process ${e.pid} was in process group ${e.pgid}, outside the dump: it joins its parent's`);
    if (!pids.has(e.sid) && e.sid !== root.sid) args.warn(`process ${e.pid} was in session ${e.sid}, outside the dump: it joins its parent's`);
  }
}

/**
 * SIGINT, SIGTERM, SIGHUP and SIGPIPE are deferred while the restore runs (infect/
 * interrupt.ts): one that comes before the tree is let go kills everything built; one
 * that comes after lets the restore finish. Either way it is then delivered to us
 * under its old disposition.
 */
export function restore(opts: RestoreOptions): RestoreResult {
  return deferSignals({ what: `restore ${opts.imagesDir}`, onSignal: opts.onSignal }, () => restoreTree(opts));
}

/** The images of a page server, mirrored into imagesDir: their page data fetched as it is read. */
function fromPageServer(opts: RestoreOptions): RemotePages | undefined {
  const at = opts.pageServer;
  if (!at) return undefined;
  if (opts.verifyPages) throw new CkptError('USAGE', 'Cannot verify page checksums of images on a page server: its pages are fetched as they are needed');
  const connect = () => connectPageServer(at);
  if (at.channel) return new RemotePages(connect, mirrorSet(at.channel, { local: opts.imagesDir, dir: at.dir }), { borrowed: at.channel });
  const ch = connect();
  let first: Channel | undefined = ch;
  try {
    const backed = mirrorSet(ch, { local: opts.imagesDir, dir: at.dir });
    // The mirror's connection serves the restore's first fetch.
    return new RemotePages(() => {
      const c = first ?? connect();
      first = undefined;
      return c;
    }, backed);
  } catch (e) {
    ch.close();
    throw e;
  }
}

function restoreTree(opts: RestoreOptions): RestoreResult {
  const t0 = monotonicMs();
  const remotePages = fromPageServer(opts);
  let reader: ImageReader;
  try {
    reader = ImageReader.open(opts.imagesDir);
  } catch (e) {
    remotePages?.close();
    throw e;
  }
  const warnings: string[] = [];
  const warn = (m: string) => void warnings.push(m);
  const undo = new Undo();
  const shared = new LocalObjects();
  let blank: SeizedProcess | undefined;
  let blankPid: number | undefined;
  try {
    // Started first: its start-up (a Node process) overlaps the restore; nothing waits for it before the tree is let go.
    let lazy: LazyPagesClient | undefined;
    if (opts.lazyPages) {
      const client = LazyPagesClient.start({
        imagesDir: opts.imagesDir, images: reader, command: opts.lazyPagesCommand, log: opts.lazyPagesLog ?? join(opts.imagesDir, 'lazy-pages.log'),
        remote: remotePages && opts.pageServer && { at: { address: opts.pageServer.address, port: opts.pageServer.port, authToken: opts.pageServer.authToken, dir: opts.pageServer.dir }, pages: remotePages },
      });
      undo.push('stop the lazy-pages server', () => client.stop());
      lazy = client;
    }
    const inheritFds = (opts.inheritFd ?? []).map(parseInheritFd);
    const pidfile = opts.pidfile === undefined ? undefined : createPidfile(opts.pidfile);
    if (pidfile) undo.push('remove pidfile', () => pidfile.discard());
    const tree = loadTree(reader, opts);
    const netLock = reader.has(NETLOCK_IMAGE.name) ? reader.read(NETLOCK_IMAGE) : undefined;
    const event = opts.onEvent ?? (() => {});
    const pages = [...tree.procs.values()].reduce((n, img) => n + img.pages.layers.reduce((m, l) => m + l.runs.reduce((k, r) => k + r.nrPages, 0), 0), 0);
    const read = { pids: tree.entries.map((e) => e.pid), pages, bytes: pages * PAGE_SIZE };
    event({ phase: 'read', ...read, ms: monotonicMs() - t0 });
    let restored = 0;
    const report = opts.onProgress;
    const progress = report && ((n: number) => report({ bytes: (restored += n), total: read.bytes }));
    for (const e of tree.entries) waitPidFree(e.pid);
    for (const img of tree.procs.values()) for (const t of img.core.threads.slice(1)) waitPidFree(t.tid, { what: `thread ${t.tid} of process ${img.pid}` });
    // SysV queues and semaphore sets the tree used: kept if still there unchanged, else made again.
    // SysV shm segments: checked now (kept, or free to make), made when first attached.
    planSysvSegments(shared, savedSegments(tree.procs.values(), { reader, fetch: remotePages }));
    if (reader.has(IPC_IMAGE.name)) restoreSysvIpc(reader.read(IPC_IMAGE), { blob: (name) => reader.blob(name), undo });
    checkInterrupted();
    const parents = new Set(tree.entries.map((e) => e.ppid));
    const b = startBlank();
    blankPid = b.pid;
    undo.push('kill blank', () => kill(b.pid, SIG.SIGKILL));
    blank = seizeProcess(b.pid, { ptraceOptions: RESTORE_PTRACE_OPTIONS });
    // A shell job joins our session, in a group of its own.
    const entries = opts.shellJob ? asShellJob(tree.entries, tree.procs.get(tree.root)) : tree.entries;
    const remotes = new Map<number, RemoteTask>();
    const built: CreatedProcess[] = [];
    const check = opts.check ?? process.env['CKPT_CHECK'] === '1';
    // The check compares the processes with the page data the restore wrote, kept as it was.
    const keptPages = check ? new KeptPages() : undefined;
    const ctxFor = (pid: number, remote: RemoteTask): RestoreContext => ({
      pid,
      remote,
      blobs: { get: (name) => reader.blob(name), path: (name) => `${opts.imagesDir}/${name}.blob` },
      pages: (id) => {
        const p = reader.pages(id);
        remotePages?.ensureRuns(p.path, p.runs);
        return { path: p.path, runs: p.runs };
      },
      fetchPages: remotePages && ((p) => remotePages.ensureRuns(p.path, p.runs)),
      undo,
      options: { shellJob: opts.shellJob ?? false, inheritFds, extUnixSk: opts.extUnixSk, tcpClose: opts.tcpClose, manageCgroups: opts.manageCgroups },
      shared,
      remoteOf: (other) => remotes.get(other),
      treeStates: (name) => [...tree.procs.values()].flatMap((img) => img.resources.filter((r) => r.module.name === name).map((r) => r.state)),
      openAs: tree.procs.get(pid)?.openAs,
      lazy: parents.has(pid) ? undefined : lazy,
      progress,
      keptPages,
      warn,
    });
    // Parents first; a child is forked once its parent's memory is rebuilt, so that the
    // pages they shared copy-on-write are shared again.
    const build = (e: TreeEntry, parent: RemoteTask): void => {
      checkInterrupted();
      const root = e.ppid === 0;
      const remote = cloneProcess(parent, { entry: e, asOurChild: root, undo });
      remotes.set(e.pid, remote);
      const img = tree.procs.get(e.pid);
      if (!img) return; // a zombie: it dies once the groups are in place
      const inherited = !root && img.mem.vmas.some((v) => v.inherited && !isKernelArea(v));
      const forkChildren = () => {
        for (const c of entries) if (c.ppid === e.pid) build(c, remote);
      };
      const memoryStarts = () => event({ phase: 'memory', pid: e.pid, ms: monotonicMs() - t0 });
      built.push(rebuildProcess(ctxFor(e.pid, remote), img, { inherited, forkChildren, memoryStarts }));
    };
    build(entries[0]!, new RemoteTask(b.pid, { site: BLANK_SYSCALL_SITE }));
    // Files once every process exists (a socket is made in the process its peer credentials
    // name), all before any process takes its own credentials; in the same order as before.
    for (const p of built) rebuildFiles(p);
    for (const p of built) {
      rebuildRest(p);
      event({ phase: 'process', pid: p.img.pid, ms: monotonicMs() - t0 });
    }
    joinGroups(entries, { remotes, warn });
    // Terminals' foreground groups, once every group exists.
    finishTerminals(built, shared);
    const terminal = opts.shellJob ? takeTerminal({ rootPid: tree.root, root: tree.procs.get(tree.root), undo, warn }) : undefined;
    for (const e of entries) {
      if (!e.zombie) continue;
      const parent = tree.procs.get(e.ppid);
      const stateOf = (name: string) => parent?.resources.find((r) => r.module.name === name)?.state;
      withChildrenKept(remotes.get(e.ppid)!, { sigactions: stateOf('sigactions') as SigactionsState | undefined }, () => {
        becomeZombie(remotes.get(e.pid)!, e.zombie!.status);
        const pending = stateOf('pending') as PendingState | undefined;
        const signal = exitSignalOf(e);
        dropExitSignal(remotes.get(e.ppid)!, { signal, wasPending: pending?.shared.some((s) => s.signo === signal) ?? false });
      });
    }
    // Stopped processes first, stopped again while their parents are held (restore/stopped.ts).
    const stoppedAgain = stopAgain({ built, entries, remotes });
    // The check reads each process through the restore's scratch area, left mapped for it.
    const scratch = new Map(check ? built.map((p) => [p.img.pid, p.remote.handOverScratch()] as const) : []);
    for (const p of built) if (!stoppedAgain.has(p.img.pid)) loadRegisters(p);
    if (check) checkRestored({ built, entries, reader, inheritFds, tcpClose: opts.tcpClose, manageCgroups: opts.manageCgroups, scratch, keptPages });
    event({ phase: 'built', ms: monotonicMs() - t0 });
    // The last point of return: once let go (or confirmed: its other copy may be gone), the tree runs whatever comes.
    checkInterrupted();
    const held = (opts.confirm?.() ?? 'run') === 'stop';
    pidfile?.write(tree.root);
    // Queued while every thread is in its ptrace stop: each process stops first thing.
    if (opts.leaveStopped || held) for (const p of built) kill(p.img.pid, SIG.SIGSTOP);
    for (const p of built) letRun(p);
    for (const p of built) if (p.img.entry.stopped && !stoppedAgain.has(p.img.pid)) kill(p.img.pid, SIG.SIGSTOP);
    undo.clear();
    event({ phase: 'let-go', ms: monotonicMs() - t0 });
    lazy?.go({ prefetch: opts.lazyPrefetch ?? true });
    kill(b.pid, SIG.SIGKILL);
    blank.release();
    reapBlank(b.pid);
    // Every socket is back: packets may reach them again. A failed restore leaves the lock, so that
    // peers keep retransmitting (not reset) until a restore succeeds.
    if (netLock && opts.networkLock !== 'skip' && !held) {
      const failed = unlockNetwork(netLock);
      if (failed) warn(failed);
    }
    const totalMs = monotonicMs() - t0;
    event({ phase: 'running', ms: totalMs });
    const lazyPages = lazy && { serverPid: lazy.server.pid, guardPid: lazy.guard.pid, log: lazy.log };
    return { pid: tree.root, processes: tree.entries.length, pages: read.pages, bytes: read.bytes, totalMs, warnings, terminal, lazyPages };
  } catch (e) {
    const failed = undo.runAll();
    try {
      blank?.release();
    } catch {
      // killed above
    }
    if (blankPid !== undefined) reapBlank(blankPid);
    if (failed.length > 0 && e instanceof Error) e.message += ` (cleanup also failed: ${failed.map((f) => f.label).join(', ')})`;
    throw e;
  } finally {
    shared.close();
    reader.close();
    // Its lazy-pages server has its own connection (the server serves one at a time).
    remotePages?.close();
  }
}
