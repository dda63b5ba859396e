/**
 * Rebuilding one created process: its resources by phase around memory, threads and
 * files, then its registers. It stays stopped until the whole tree is ready.
 */
import { checkInterrupted, detachThread, type RemoteTask } from '../infect/index.js';
import { restoreMemory } from '../resources/memory/restore.js';
import { restoreXstate, resumeRegs, rewoundRegs } from '../resources/thread/cpu.js';
import { restoreThreads, type BuiltThread } from '../resources/thread/threads.js';
import type { Phase } from '../resources/registry.js';
import { inTargetAs } from '../resources/process/fscreds.js';
import { armParentDeathKill, restoreParentDeathSignal, type MiscState } from '../resources/process/index.js';
import type { RestoreContext } from '../resources/types.js';
import type { ProcessImages } from './images.js';

export interface BuiltProcess {
  img: ProcessImages;
  remote: RemoteTask;
  threads: BuiltThread[];
}

export interface RebuildOptions {
  /** Forked from its restored parent: keep the areas it inherited (copy-on-write). */
  inherited: boolean;
  /** Called once memory is rebuilt: children forked then share it copy-on-write. */
  forkChildren(): void;
}

export function rebuildProcess(ctx: RestoreContext, img: ProcessImages, opts: RebuildOptions): BuiltProcess {
  const phase = (p: Phase, c: RestoreContext = ctx) => {
    checkInterrupted();
    for (const r of img.resources) {
      if (r.phase !== p) continue;
      // A shared fd table was rebuilt with the parent that shares it.
      if (r.module.name === 'files' && img.entry.sharesFiles) continue;
      r.module.restore(c, r.state);
    }
  };
  phase('before-memory');
  // misc just set the saved parent-death signal: SIGKILL again until the tree is let go.
  armParentDeathKill(ctx.remote);
  const older = img.pages.layers.slice(1).map((l) => ({ path: l.reader.path, runs: l.runs }));
  restoreMemory(ctx, { state: img.mem, pages: { path: img.pages.path, runs: img.pages.runs }, older, inherited: opts.inherited });
  opts.forkChildren();
  phase('after-memory');
  const threads = restoreThreads(ctx, img.core.threads.slice(1));
  // Paths are opened with the process's own credentials when the images are not trusted.
  inTargetAs(ctx.remote, { pid: ctx.pid, as: ctx.openAs }, () => phase('files'));
  phase('after-files');
  phase('finish');
  // Credentials are per thread, and the threads were cloned with the restorer's: each
  // sets its own, the leader last, since any uid change resets the (per-process)
  // dumpable flag that the leader's restore sets.
  for (const t of threads) phase('last', { ...ctx, remote: t.remote });
  phase('last');
  // The credentials just set clear the parent-death signal: armed again until the tree is let go.
  armParentDeathKill(ctx.remote);
  return { img, remote: ctx.remote, threads };
}

/** Loads the final registers of every thread; the process stays stopped. */
export function loadRegisters(b: BuiltProcess): void {
  const cpu = b.img.core.threads[0]!;
  const misc = b.img.resources.find((r) => r.module.name === 'misc');
  if (misc) restoreParentDeathSignal(b.remote, misc.state as MiscState);
  b.remote.finish({ regs: resumeRegs(cpu.regs), mask: b.img.mask });
  restoreXstate(b.img.pid, cpu);
  for (const t of b.threads) {
    // After the credentials, which clear it (per thread, like the leader's).
    if (t.thread.pdeathSig) restoreParentDeathSignal(t.remote, { pdeathSig: t.thread.pdeathSig });
    // A new thread: its interrupted syscall is rewound here, saving a stop per thread.
    t.remote.finish({ regs: rewoundRegs(t.thread.regs), mask: t.mask, direct: true });
    restoreXstate(t.thread.tid, t.thread);
  }
}

export function letRun(b: BuiltProcess): void {
  for (const t of b.threads) detachThread(t.thread.tid);
  detachThread(b.img.pid);
}
