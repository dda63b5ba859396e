/**
 * Decoding a checkpoint directory into one JSON-able object, for people (like
 * CRIU's crit): every image is read through the same checks restore uses, so
 * `show` also tells whether a set is readable. 64-bit values become hex strings.
 */
import { ImageReader, PAGE_SIZE, type InventoryEntry } from '../images/index.js';
import { coreImage, mmImage, PREDUMP_IMAGE, TOOL_IMAGE, type TreeEntry } from '../resources/images.js';
import type { MemoryState, Vma } from '../resources/memory/state.js';
import { RESOURCES } from '../resources/registry.js';

export interface ShowVma {
  start: string;
  end: string;
  size: number;
  perms: string;
  kind: string;
  offset: string;
  file?: string;
  name?: string;
  flags: string[];
}

export interface ShowThread {
  tid: number;
  /** The thread's name (threads other than the leader). */
  comm?: string;
  regs: Record<string, string>;
  xstateBytes: number;
  /** Per-thread state (signal mask, own pending signals, altstack, futex pointers, rseq). */
  resources?: Record<string, unknown>;
}

export interface ShowProcess {
  pid: number;
  core: { threads: ShowThread[]; resources: Record<string, unknown> };
  mm: {
    vmas: ShowVma[];
    files: MemoryState['files'];
    exe: string | undefined;
    layout: Record<string, string>;
    auxvBytes: number;
  };
  pagemap: ShowPagemap;
}

export interface ShowPagemap {
  runs: number;
  /** Pages in this set's page file. */
  pages: number;
  bytes: number;
  fileBytes: number;
  checksums: boolean;
  /** Incremental dumps: pages unchanged since the parent dump, left in the parent images. */
  inParent: number;
  /** Of those, how many the parents hold (the rest were absent then and are zero). */
  fromParents: number;
}

export interface ShowReport {
  dir: string;
  format: string;
  inventory: InventoryEntry[];
  /** 'pre-dump': only private pages, for a later dump made against it (then `process.tree` and `processes` are empty). */
  kind: 'dump' | 'pre-dump';
  process: { tool: string; rootPid: number; pids: number[]; tree: TreeEntry[]; kernel: string; createdAt: string };
  processes: ShowProcess[];
  /** Pre-dumps: the pages saved of each process. */
  preDumped?: { pid: number; pagemap: ShowPagemap }[];
  /** The set this one was dumped against (checked: a missing or changed parent fails show too). */
  parent?: { dir: string; path: string; inventorySha256: string };
}

const hex = (v: bigint): string => `0x${v.toString(16)}`;

/** Deep copy with every bigint as a hex string (JSON cannot hold them). */
function jsonable(v: unknown): unknown {
  if (typeof v === 'bigint') return hex(v);
  if (Array.isArray(v)) return v.map(jsonable);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonable(x)]));
  }
  return v;
}

function perms(v: Vma): string {
  return `${v.prot & 1 ? 'r' : '-'}${v.prot & 2 ? 'w' : '-'}${v.prot & 4 ? 'x' : '-'}${v.shared ? 's' : 'p'}`;
}

function showVma(v: Vma, mem: MemoryState): ShowVma {
  const out: ShowVma = { start: hex(v.start), end: hex(v.end), size: Number(v.end - v.start), perms: perms(v), kind: v.kind, offset: hex(v.offset), flags: v.flags };
  if (v.file !== undefined) out.file = mem.files[v.file]?.path ?? `<bad file index ${v.file}>`;
  if (v.name !== undefined) out.name = v.name;
  return out;
}

/** Each resource's state through its module's schema; an invalid one is shown raw with the reason. */
function showResources(raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const { module: m } of RESOURCES) {
    const parsed = m.schema.safeParse(raw[m.name]);
    out[m.name] = parsed.success ? jsonable(parsed.data) : { invalid: parsed.error.issues[0]?.message, raw: raw[m.name] };
  }
  for (const name of Object.keys(raw)) if (!(name in out)) out[name] = { unknownModule: true, raw: raw[name] };
  return out;
}

function showPagemap(r: ImageReader, pid: number): ShowPagemap {
  const pages = r.pages(pid);
  const count = (runs: readonly { nrPages: number }[]) => runs.reduce((n, run) => n + run.nrPages, 0);
  const nPages = count(pages.runs);
  const fromParents = pages.layers.slice(1).reduce((n, l) => n + count(l.runs), 0);
  return { runs: pages.runs.length, pages: nPages, bytes: nPages * PAGE_SIZE, fileBytes: pages.size, checksums: pages.hasChecksums, inParent: count(pages.inParent), fromParents };
}

function showProcess(r: ImageReader, pid: number): ShowProcess {
  const core = r.read(coreImage(pid));
  const mem = r.read(mmImage(pid));
  return {
    pid,
    core: {
      threads: core.threads.map((t) => ({
        tid: t.tid,
        comm: t.comm,
        regs: Object.fromEntries(Object.entries(t.regs).map(([k, v]) => [k, hex(BigInt.asUintN(64, v as bigint))])),
        xstateBytes: Buffer.from(t.xstate, 'base64').length,
        resources: t.resources ? showResources(t.resources) : undefined,
      })),
      resources: showResources(core.resources),
    },
    mm: {
      vmas: mem.vmas.map((v) => showVma(v, mem)),
      files: mem.files,
      exe: mem.files[mem.exe]?.path,
      layout: Object.fromEntries(Object.entries(mem.mm).map(([k, v]) => [k, hex(v)])),
      auxvBytes: Buffer.from(mem.auxv, 'base64').length,
    },
    pagemap: showPagemap(r, pid),
  };
}

/** Reads and decodes every image in `dir`; throws a BAD_IMAGE CkptError for a damaged set. */
export function show(dir: string): ShowReport {
  const r = ImageReader.open(dir);
  try {
    const ref = r.parentRef;
    const parent = ref ? { dir: ref.dir, path: r.parent()!.dir, inventorySha256: ref.inventorySha256 } : undefined;
    const head = { dir, format: `${r.version.major}.${r.version.minor}`, inventory: r.list(), parent };
    if (r.has(PREDUMP_IMAGE.name)) {
      const pre = r.read(PREDUMP_IMAGE);
      return {
        ...head, kind: 'pre-dump', process: { ...pre, tree: [] }, processes: [],
        preDumped: pre.pids.map((pid) => ({ pid, pagemap: showPagemap(r, pid) })),
      };
    }
    const tool = r.read(TOOL_IMAGE);
    return {
      ...head,
      kind: 'dump',
      process: tool,
      // Zombies have only their tree entry (with the exit status): it is in `process.tree`.
      processes: tool.tree.filter((e) => !e.zombie).map((e) => showProcess(r, e.pid)),
    };
  } finally {
    r.close();
  }
}
