/**
 * Pre-dump (CRIU's name): the private pages of every process of a tree, saved while the
 * tree keeps running, with memory tracking armed so that the next round (another
 * pre-dump, or the final dump) saves only what was written since. The tree is frozen
 * only to read which pages to save and to arm the tracking; the pages are copied after
 * it runs again (resources/memory/running-copy.ts says why that is safe).
 */
import { release as kernelRelease } from 'node:os';
import { CkptError } from '../common/errors.js';
import { isErrno } from '../sys/index.js';
import { checkInterrupted, deferSignals, findSyscallSite, RemoteTask } from '../infect/index.js';
import { ImageWriter, type ParentRef, type PageWriter } from '../images/index.js';
import { resumeTracking } from './tracking.js';
import { planPreDump } from '../resources/memory/dump.js';
import { copyRunning } from '../resources/memory/running-copy.js';
import { MemoryTracking, TRACKING_IMAGE } from '../resources/memory/track.js';
import type { PageRun } from '../resources/memory/copy.js';
import { restartInterruptedWait } from '../resources/thread/cpu.js';
import { refuseSyscallDispatch } from '../resources/process/knobs-refused.js';
import { PREDUMP_IMAGE } from '../resources/images.js';
import { releaseTree, seizeTree, type SeizedTree } from './tree.js';
import { leaveGroupStop } from './dump.js';
import { withImageWriter, type PageServerTarget } from './page-server.js';

export interface PreDumpOptions {
  imagesDir: string;
  /** CRIU's --prev-images-dir: the previous round's images (relative to imagesDir, or absolute). */
  parent?: string;
  /** CRC-32 page data too. */
  pageChecksums?: boolean;
  timeoutMs?: number;
  /** As DumpOptions.onSignal. */
  onSignal?: (error?: unknown) => void;
  /** As DumpOptions.pageServer. */
  pageServer?: PageServerTarget;
}

export interface PreDumpResult {
  pid: number;
  pids: number[];
  imagesDir: string;
  /** Pages saved in this round. */
  pages: number;
  bytes: number;
  /** Pages left in the parent's images (unchanged since). */
  inParent: number;
  /** Pages that went away while they were copied (saved as zeros; never used, see running-copy.ts). */
  missing: number;
  /** Time the tree was stopped, ms. */
  frozenMs: number;
  totalMs: number;
}

export function preDump(pid: number, opts: PreDumpOptions): PreDumpResult {
  if (!Number.isInteger(pid) || pid <= 0) throw new CkptError('USAGE', `Cannot pre-dump process ${pid}: not a valid PID`);
  return deferSignals({ what: `pre-dump process ${pid}`, onSignal: opts.onSignal }, () => preDumpTree(pid, opts));
}

interface Planned {
  pid: number;
  pw: PageWriter;
  runs: PageRun[];
  inParent: number;
}

/** While the tree is stopped: what to copy from each process, tracking armed. */
function plan(tree: SeizedTree, args: { w: ImageWriter; tracking: MemoryTracking; opts: PreDumpOptions }): Planned[] {
  const out: Planned[] = [];
  for (const e of tree.entries) {
    if (e.zombie) continue;
    checkInterrupted();
    const proc = tree.procs.get(e.pid)!;
    // PTRACE_INTERRUPT woke some waits with EINTR: they must restart when the tree runs on.
    for (const tid of proc.tids) {
      refuseSyscallDispatch({ pid: e.pid, tid });
      restartInterruptedWait(tid);
    }
    let remote: RemoteTask | undefined;
    const getRemote = () => {
      if (!remote) {
        const r = new RemoteTask(e.pid, { site: findSyscallSite(e.pid), recoverable: true });
        remote = r;
        proc.undo.push(`restore registers of ${e.pid}`, () => r.finish());
        if (proc.tasks.get(e.pid)?.groupStopped) leaveGroupStop(proc, r);
      }
      return remote;
    };
    const pw = args.w.pages(e.pid, { checksum: args.opts.pageChecksums ?? false });
    const tracker = args.tracking.forProcess(e.pid, getRemote);
    try {
      const p = planPreDump(e.pid, { tracker, fromParent: (vaddr, n) => pw.fromParent(vaddr, n) });
      out.push({ pid: e.pid, pw, runs: p.runs, inParent: p.inParent });
    } finally {
      tracker.close();
    }
    (remote as RemoteTask | undefined)?.finish();
  }
  return out;
}

function preDumpTree(pid: number, opts: PreDumpOptions): PreDumpResult {
  const t0 = performance.now();
  return withImageWriter(opts.imagesDir, { target: opts.pageServer, fn: (w) => preDumpInto(w, { pid, opts, t0 }) });
}

function preDumpInto(w: ImageWriter, args: { pid: number; opts: PreDumpOptions; t0: number }): PreDumpResult {
  const { pid, opts, t0 } = args;
  let tracking: MemoryTracking | undefined;
  let tree: SeizedTree | undefined;
  let running = true;
  try {
    let ref: ParentRef | undefined;
    if (opts.parent) ({ ref, tracking } = resumeTracking(opts.imagesDir, opts.parent));
    else tracking = new MemoryTracking();
    tree = seizeTree(pid, { timeoutMs: opts.timeoutMs });
    running = false;
    const frozenAt = performance.now();
    const planned = plan(tree, { w, tracking, opts });
    releaseTree(tree);
    running = true;
    const frozenMs = performance.now() - frozenAt;
    let pages = 0;
    let inParent = 0;
    let missing = 0;
    for (const p of planned) {
      missing += copyRunning(p.pid, { runs: p.runs, sink: p.pw }).missing;
      pages += p.pw.close().nrPages;
      inParent += p.inParent;
    }
    const pids = planned.map((p) => p.pid);
    w.write({ ...PREDUMP_IMAGE, value: { tool: 'ckpt', rootPid: pid, pids, kernel: kernelRelease(), createdAt: new Date().toISOString() } });
    w.write({ ...TRACKING_IMAGE, value: tracking.keep(pids, pid) });
    if (ref) w.setParent(ref);
    checkInterrupted();
    w.commit();
    tracking.commit();
    return { pid, pids, imagesDir: opts.imagesDir, pages, bytes: pages * 4096, inParent, missing, frozenMs, totalMs: performance.now() - t0 };
  } catch (e) {
    w.abort();
    if (tree && !running) releaseTree(tree);
    tracking?.release({ failed: true });
    if (tree && isErrno(e, 'ESRCH')) throw new CkptError('NO_PROCESS', `Cannot pre-dump process ${pid}: it exited during the pre-dump`, { cause: e });
    throw e;
  }
}
