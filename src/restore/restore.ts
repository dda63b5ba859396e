/**
 * Restore orchestration for one process: read and check every image first (nothing
 * is created for a bad image set), start a blank process, clone the new process from
 * it with its old PID (clone3 set_tid), rebuild memory, files and the rest by injected
 * syscalls, load the registers last and let it run. Any failure kills what was built.
 */
import { writeFileSync } from 'node:fs';
import { CkptError } from '../common/errors.js';
import {
  CLONE, encodeCloneArgs, kill, NR, ptrace, PTRACE_EVENT, PTRACE_O, SIG, isErrno,
} from '../sys/index.js';
import { RemoteTask, seizeProcess, Undo, waitStop, type SeizedProcess } from '../infect/index.js';
import { ImageReader } from '../images/index.js';
import { checkMappedFiles, restoreMemory } from '../resources/memory/restore.js';
import { restoreXstate, resumeRegs } from '../resources/thread/cpu.js';
import { restoreThread } from '../resources/thread/threads.js';
import { coreImage, mmImage, TOOL_IMAGE } from '../resources/images.js';
import { RESOURCES, type Phase } from '../resources/registry.js';
import { checkCredsRestorable, finalSigmask, type CredsState, type SigmaskState } from '../resources/process/index.js';
import type { RestoreContext } from '../resources/types.js';
import { LocalObjects } from '../resources/shared.js';
import { BLANK_SYSCALL_SITE, startBlank } from './blank.js';
import { pidTaken, waitPidFree } from './pid.js';

export interface RestoreOptions {
  imagesDir: string;
  shellJob?: boolean;
  pidfile?: string;
  /** Verify page checksums before restoring (when the dump wrote them). */
  verifyPages?: boolean;
}

export interface RestoreResult {
  pid: number;
  totalMs: number;
  warnings: string[];
}

function loadImages(r: ImageReader, opts: RestoreOptions) {
  const tool = r.read(TOOL_IMAGE);
  const pid = tool.rootPid;
  if (tool.pids.length !== 1) throw new CkptError('UNSUPPORTED', `Cannot restore ${opts.imagesDir}: process trees are not supported yet`);
  const core = r.read(coreImage(pid));
  const mem = r.read(mmImage(pid));
  if (core.pid !== pid) throw new CkptError('BAD_IMAGE', `Cannot restore ${opts.imagesDir}: core image is for pid ${core.pid}, expected ${pid}`);
  if (core.threads[0]!.tid !== pid || new Set(core.threads.map((t) => t.tid)).size !== core.threads.length) {
    throw new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: its thread list is inconsistent`);
  }
  const resources = RESOURCES.map(({ module: m, phase }) => {
    const parsed = m.schema.safeParse(core.resources[m.name]);
    if (!parsed.success) throw new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: its ${m.name} state is invalid: ${parsed.error.issues[0]?.message}`);
    return { module: m, phase, state: parsed.data };
  });
  const stateOf = <T>(name: string) => resources.find((r) => r.module.name === name)?.state as T;
  checkCredsRestorable(pid, stateOf<CredsState>('creds'));
  const pages = r.pages(pid);
  if (opts.verifyPages) pages.verify();
  checkMappedFiles(mem, `process ${pid}`);
  return { pid, core, mem, pages, resources, mask: finalSigmask(stateOf<SigmaskState>('sigmask')) };
}

/** Clones the new process out of the blank one with its old PID; it is left stopped and traced. */
function cloneWithPid(blank: SeizedProcess, pid: number, undo: Undo): void {
  const remote = new RemoteTask(blank.pid, { site: BLANK_SYSCALL_SITE });
  const setTid = Buffer.alloc(4);
  setTid.writeInt32LE(pid);
  const tidAddr = remote.put(setTid, 0);
  // CLONE_PARENT: the new process is our child, not the blank's, so we can wait for it.
  // clone3 refuses an exit_signal with it: the child takes the blank's, SIGCHLD.
  const args = encodeCloneArgs({ flags: CLONE.PARENT, setTid: tidAddr, setTidSize: 1n });
  const argsAddr = remote.put(args, 64);
  const got = remote.raw(NR.clone3, [argsAddr, args.length]);
  if (got === -17n) throw pidTaken(pid);
  if (got < 0n) throw new CkptError('PERMISSION', `Cannot restore process ${pid}: clone3 with set_tid failed (errno ${-got}); is CAP_CHECKPOINT_RESTORE missing?`);
  if (got !== BigInt(pid)) throw new CkptError('INTERNAL', `Cannot restore process ${pid}: clone3 gave pid ${got}`);
  undo.push(`kill ${pid}`, () => {
    try {
      kill(pid, SIG.SIGKILL);
    } catch (e) {
      if (!isErrno(e, 'ESRCH')) throw e;
    }
  });
  const st = waitStop(pid);
  if (st.event !== PTRACE_EVENT.STOP) throw new CkptError('INTERNAL', `Cannot restore process ${pid}: unexpected first stop (event ${st.event})`);
}

export function restore(opts: RestoreOptions): RestoreResult {
  const t0 = performance.now();
  const reader = ImageReader.open(opts.imagesDir);
  const warnings: string[] = [];
  const undo = new Undo();
  const shared = new LocalObjects();
  let blank: SeizedProcess | undefined;
  try {
    const img = loadImages(reader, opts);
    const pid = img.pid;
    waitPidFree(pid);
    const b = startBlank();
    undo.push('kill blank', () => kill(b.pid, SIG.SIGKILL));
    blank = seizeProcess(b.pid, { ptraceOptions: PTRACE_O.TRACEFORK | PTRACE_O.TRACECLONE | PTRACE_O.EXITKILL });
    cloneWithPid(blank, pid, undo);
    const remote = new RemoteTask(pid, { site: BLANK_SYSCALL_SITE });
    const ctx: RestoreContext = {
      pid,
      remote,
      blobs: { get: (name) => reader.blob(name), path: (name) => `${opts.imagesDir}/${name}.blob` },
      undo,
      options: { shellJob: opts.shellJob ?? false },
      shared,
      warn: (m) => warnings.push(m),
    };
    const phase = (p: Phase) => {
      for (const r of img.resources) if (r.phase === p) r.module.restore(ctx, r.state);
    };
    phase('before-memory');
    restoreMemory(ctx, { state: img.mem, pages: { path: img.pages.path, runs: img.pages.runs } });
    phase('after-memory');
    const threads = img.core.threads.slice(1).map((t) => restoreThread(ctx, t));
    phase('files');
    phase('after-files');
    phase('finish');
    phase('last');
    const cpu = img.core.threads[0]!;
    remote.finish({ regs: resumeRegs(cpu.regs), mask: img.mask });
    restoreXstate(pid, cpu);
    for (const t of threads) {
      t.remote.finish({ regs: resumeRegs(t.thread.regs), mask: t.mask });
      restoreXstate(t.thread.tid, t.thread);
    }
    if (opts.pidfile) writeFileSync(opts.pidfile, `${pid}\n`, { mode: 0o644 });
    for (const t of threads) ptrace.detach(t.thread.tid, 0);
    ptrace.detach(pid, 0);
    undo.clear();
    kill(b.pid, SIG.SIGKILL);
    blank.release();
    return { pid, totalMs: performance.now() - t0, warnings };
  } catch (e) {
    const failed = undo.runAll();
    try {
      blank?.release();
    } catch {
      // killed above
    }
    if (failed.length > 0 && e instanceof Error) e.message += ` (cleanup also failed: ${failed.map((f) => f.label).join(', ')})`;
    throw e;
  } finally {
    shared.close();
    reader.close();
  }
}
