/**
 * Reading and checking every image of a tree before anything is created: a bad or
 * inconsistent image set fails here, with nothing built.
 */
import { CkptError } from '../common/errors.js';
import { checkInterrupted } from '../infect/index.js';
import type { ImageReader, PageReader } from '../images/index.js';
import { checkMappedFiles } from '../resources/memory/restore.js';
import { coreImage, mmImage, TOOL_IMAGE, type CoreImage, type TreeEntry } from '../resources/images.js';
import type { MemoryState } from '../resources/memory/state.js';
import { checkCredsRestorable, finalSigmask, type CredsState, type SigmaskState } from '../resources/process/index.js';
import { RESOURCES, type Phase } from '../resources/registry.js';
import type { Resource } from '../resources/types.js';

export interface ProcessImages {
  pid: number;
  entry: TreeEntry;
  core: CoreImage;
  mem: MemoryState;
  pages: PageReader;
  resources: { module: Resource<unknown>; phase: Phase; state: unknown }[];
  mask: bigint;
}

export interface TreeImages {
  root: number;
  /** Parents before children. */
  entries: TreeEntry[];
  procs: Map<number, ProcessImages>;
}

function loadProcess(r: ImageReader, entry: TreeEntry, opts: { verifyPages?: boolean }): ProcessImages {
  const pid = entry.pid;
  const core = r.read(coreImage(pid));
  const mem = r.read(mmImage(pid));
  if (core.pid !== pid) throw new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: its core image is for pid ${core.pid}`);
  if (core.threads[0]!.tid !== pid || new Set(core.threads.map((t) => t.tid)).size !== core.threads.length) {
    throw new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: its thread list is inconsistent`);
  }
  const resources = RESOURCES.map(({ module: m, phase }) => {
    const parsed = m.schema.safeParse(core.resources[m.name]);
    if (!parsed.success) throw new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: its ${m.name} state is invalid: ${parsed.error.issues[0]?.message}`);
    return { module: m, phase, state: parsed.data };
  });
  const stateOf = <T>(name: string) => resources.find((x) => x.module.name === name)?.state as T;
  checkCredsRestorable(pid, stateOf<CredsState>('creds'));
  const pages = r.pages(pid);
  if (opts.verifyPages) pages.verify();
  checkMappedFiles(mem, `process ${pid}`);
  return { pid, entry, core, mem, pages, resources, mask: finalSigmask(stateOf<SigmaskState>('sigmask')) };
}

/** The tree must be a tree: one root, every parent listed before its children. */
function checkTree(dir: string, root: number, entries: TreeEntry[]): void {
  const seen = new Set<number>();
  for (const e of entries) {
    const bad = (why: string) => new CkptError('BAD_IMAGE', `Cannot restore ${dir}: process ${e.pid} ${why}`);
    if (seen.has(e.pid)) throw bad('is listed twice');
    if (e === entries[0] ? e.pid !== root || e.ppid !== 0 : !seen.has(e.ppid)) throw bad('has no parent before it in the tree');
    if (e.zombie && entries.some((c) => c.ppid === e.pid)) throw bad('is a zombie with children');
    seen.add(e.pid);
  }
}

export function loadTree(r: ImageReader, opts: { imagesDir: string; verifyPages?: boolean }): TreeImages {
  const tool = r.read(TOOL_IMAGE);
  checkTree(opts.imagesDir, tool.rootPid, tool.tree);
  const procs = new Map<number, ProcessImages>();
  for (const e of tool.tree) {
    checkInterrupted();
    if (!e.zombie) procs.set(e.pid, loadProcess(r, e, opts));
  }
  return { root: tool.rootPid, entries: tool.tree, procs };
}
