/**
 * Reading and checking every image of a tree before anything is created: a bad or
 * inconsistent image set fails here, with nothing built.
 */
import { CkptError } from '../common/errors.js';
import { checkInterrupted } from '../infect/index.js';
import type { ImageReader, PageReader, PageRun } from '../images/index.js';
import { checkMappedFiles } from '../resources/memory/restore.js';
import { checkLayout, checkPageCount, checkRuns } from '../resources/memory/check.js';
import { coreImage, mmImage, PREDUMP_IMAGE, TOOL_IMAGE, type CoreImage, type TreeEntry } from '../resources/images.js';
import type { MemoryState } from '../resources/memory/state.js';
import { checkCredsRestorable, finalSigmask, restorerPrivilege, type CredsState, type SigmaskState } from '../resources/process/index.js';
import { locallyAs, openCredsOf } from '../resources/process/fscreds.js';
import { userPrivilege, type PrivilegeLimit } from '../resources/process/privilege.js';
import type { OpenCreds } from '../resources/types.js';
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
  /** The process's own credentials for opening paths, when the images are not trusted. */
  openAs?: OpenCreds;
}

export interface TreeImages {
  root: number;
  /** Parents before children. */
  entries: TreeEntry[];
  procs: Map<number, ProcessImages>;
}

function loadProcess(r: ImageReader, entry: TreeEntry, opts: { verifyPages?: boolean; limit: PrivilegeLimit }): ProcessImages {
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
  const creds = stateOf<CredsState>('creds');
  checkCredsRestorable(pid, creds, opts.limit);
  const openAs = opts.limit.owner ? openCredsOf(creds) : undefined;
  const pages = r.pages(pid);
  checkLayout(pid, mem);
  checkRuns(pid, mem.vmas, { runs: allRuns(pages) });
  checkPageCount(pid, mem, pages);
  if (opts.verifyPages) pages.verify();
  // Read with the process's credentials too: whether a file changed says something about it.
  locallyAs(openAs, () => checkMappedFiles(mem, `process ${pid}`));
  return { pid, entry, core, mem, pages, resources, mask: finalSigmask(stateOf<SigmaskState>('sigmask')), openAs };
}

/** The runs of every layer of a page file (incremental dumps: its parents' pieces too), by vaddr. */
export function allRuns(pages: PageReader): readonly PageRun[] {
  // The reader's own list: restoreMemory checks the same one again (checkRuns remembers it).
  if (pages.layers.length === 1) return pages.runs;
  return pages.layers.flatMap((l) => l.runs).sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
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

/**
 * Whose privilege the restore is held to (docs/security.md). Images only the restorer
 * (or root) could have written are trusted: the restore is held to the restorer's own
 * privilege. Images another user could have written are held to that user's too, and
 * their paths are opened with each process's own credentials. `trustImages` says the
 * restorer vouches for them anyway.
 */
export function imageTrust(r: ImageReader, opts: { imagesDir: string; trustImages?: boolean }): PrivilegeLimit {
  if (opts.trustImages) return {};
  const own = process.geteuid?.() ?? 0;
  const o = r.ownership();
  const hint = 'make them private to their owner, or pass --trust-images if you vouch for them';
  if (o.writableByOthers !== undefined) {
    throw new CkptError('PERMISSION', `Cannot restore ${opts.imagesDir}: ${o.writableByOthers} is writable by group or others, so anyone may have changed the images; ${hint}`);
  }
  const others = o.uids.filter((u) => u !== own && u !== 0);
  if (others.length === 0) return {};
  if (others.length > 1) throw new CkptError('PERMISSION', `Cannot restore ${opts.imagesDir}: its files belong to several users (${others.join(', ')}); ${hint}`);
  const uid = others[0]!;
  return { owner: { uid, have: userPrivilege(uid, { extraGid: o.gid, capBnd: restorerPrivilege().capBnd }) } };
}

export function loadTree(r: ImageReader, opts: { imagesDir: string; verifyPages?: boolean; trustImages?: boolean }): TreeImages {
  const limit = imageTrust(r, opts);
  if (r.has(PREDUMP_IMAGE.name)) {
    throw new CkptError('USAGE', `Cannot restore ${opts.imagesDir}: it is a pre-dump (memory only); restore the dump made against it (dump --prev-images-dir)`);
  }
  // The parents of an incremental dump give pages too: held to the same trust.
  for (let p = r.parent(); p; p = p.parent()) {
    const theirs = imageTrust(p, { ...opts, imagesDir: p.dir });
    if (theirs.owner && theirs.owner.uid !== limit.owner?.uid) {
      throw new CkptError('PERMISSION', `Cannot restore ${opts.imagesDir}: its parent images ${p.dir} belong to user ${theirs.owner.uid}; pass --trust-images if you vouch for them`);
    }
  }
  const tool = r.read(TOOL_IMAGE);
  checkTree(opts.imagesDir, tool.rootPid, tool.tree);
  const procs = new Map<number, ProcessImages>();
  for (const e of tool.tree) {
    checkInterrupted();
    if (!e.zombie) procs.set(e.pid, loadProcess(r, e, { verifyPages: opts.verifyPages, limit }));
  }
  return { root: tool.rootPid, entries: tool.tree, procs };
}
