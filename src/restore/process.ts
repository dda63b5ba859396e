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
import { armParentDeathKill, restoreExecPolicy, restoreParentDeathSignal, rseqSchema, type MiscState } from '../resources/process/index.js';
import type { RestoreContext } from '../resources/types.js';
import type { ProcessImages } from './images.js';

export interface BuiltProcess {
  img: ProcessImages;
  remote: RemoteTask;
  threads: BuiltThread[];
  /** Areas whose pages the lazy-pages server brings in (restore --lazy-pages). */
  lazy: { start: bigint; end: bigint }[];
}

export interface RebuildOptions {
  /** Forked from its restored parent: keep the areas it inherited (copy-on-write). */
  inherited: boolean;
  /** Called once memory is rebuilt: children forked then share it copy-on-write. */
  forkChildren(): void;
  /** Called as the memory phase starts (the restore's 'memory' event). */
  memoryStarts?(): void;
}

/** A created process whose memory, children and threads are rebuilt; its files and the rest come later (rebuildRest). */
export interface CreatedProcess extends BuiltProcess {
  ctx: RestoreContext;
}

function runPhase(p: { ctx: RestoreContext; img: ProcessImages }, args: { phase: Phase; ctx?: RestoreContext }): void {
  checkInterrupted();
  for (const r of p.img.resources) {
    if (r.phase !== args.phase) continue;
    // A shared fd table was rebuilt with the parent that shares it.
    if (r.module.name === 'files' && p.img.entry.sharesFiles) continue;
    r.module.restore(args.ctx ?? p.ctx, r.state);
  }
}

/**
 * Creates what a process's children and the files of the tree need: memory (then its
 * children are forked), the after-memory state and its threads. The files phase runs
 * only once every process of the tree exists (rebuildFiles), so that a unix socket can
 * be made inside the process its peer credentials name (kinds/unix-cred.ts).
 */
export function rebuildProcess(ctx: RestoreContext, img: ProcessImages, opts: RebuildOptions): CreatedProcess {
  const p = { ctx, img };
  runPhase(p, { phase: 'before-memory' });
  // misc just set the saved parent-death signal: SIGKILL again until the tree is let go.
  armParentDeathKill(ctx.remote);
  const older = img.pages.layers.slice(1).map((l) => ({ path: l.reader.path, runs: l.runs }));
  const touched = ctx.lazy ? rseqAreas(img) : [];
  opts.memoryStarts?.();
  const { lazy } = restoreMemory(ctx, { state: img.mem, pages: { path: img.pages.path, runs: img.pages.runs }, older, inherited: opts.inherited, touched });
  opts.forkChildren();
  runPhase(p, { phase: 'after-memory' });
  const threads = restoreThreads(ctx, img.core.threads.slice(1));
  return { ctx, img, remote: ctx.remote, threads, lazy: lazy.map((v) => ({ start: v.start, end: v.end })) };
}

/** The struct rseq of each thread: the kernel writes it at every return from an injected call. */
function rseqAreas(img: ProcessImages): { start: bigint; end: bigint }[] {
  const states = [img.resources.find((r) => r.module.name === 'rseq')?.state, ...img.core.threads.slice(1).map((t) => t.resources?.['rseq'])];
  return states.flatMap((s) => {
    const r = rseqSchema.safeParse(s);
    const area = r.success ? r.data.rseq : null;
    return area ? [{ start: area.abiPointer, end: area.abiPointer + BigInt(Math.max(area.abiSize, 32)) }] : [];
  });
}

/** The fd table, with every process of the tree created and none of them with its own credentials yet. */
export function rebuildFiles(p: CreatedProcess): void {
  // Paths are opened with the process's own credentials when the images are not trusted.
  inTargetAs(p.remote, { pid: p.ctx.pid, as: p.ctx.openAs }, () => runPhase(p, { phase: 'files' }));
}

/** The phases after the files, credentials last. */
export function rebuildRest(p: CreatedProcess): void {
  runPhase(p, { phase: 'after-files' });
  runPhase(p, { phase: 'finish' });
  const misc = p.img.resources.find((r) => r.module.name === 'misc');
  if (misc) {
    const state = misc.state as MiscState;
    // personality is per thread: a thread saved with its own has it instead of the leader's.
    for (const t of p.threads) restoreExecPolicy(t.remote, { ...state, personality: t.thread.personality ?? state.personality });
    restoreExecPolicy(p.remote, state);
  }
  // Credentials are per thread, and the threads were cloned with the restorer's: each
  // sets its own, the leader last, since any uid change resets the (per-process)
  // dumpable flag that the leader's restore sets.
  for (const t of p.threads) runPhase(p, { phase: 'last', ctx: { ...p.ctx, remote: t.remote } });
  runPhase(p, { phase: 'last' });
  // The credentials just set clear the parent-death signal: armed again until the tree is let go.
  armParentDeathKill(p.remote);
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
