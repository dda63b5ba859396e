// Chains of image sets (incremental dumps): a set names its parent by a directory
// relative to its own and the SHA-256 of the parent's inventory. The inventory lists
// every file of the parent with its size and CRC (page data: covered by the pagemaps'
// chunk CRCs where they were computed), so the digest pins the whole parent set.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { lazyCrypto } from '../common/builtin.js';
import { CkptError } from '../common/errors.js';
import { badImage } from './format.js';
import { closeQuietly, openImage, tryIo } from './io.js';
import { INVENTORY_FILE, type ParentRef } from './layout.js';
import { PAGE_SIZE, type PageRun, type ParentRun } from './pagemap.js';
import type { PageReader } from './page-reader.js';

/** How many parents a chain may have: a bound on the files a restore opens. */
export const MAX_CHAIN = 64;

/** SHA-256 (hex) of DIR/inventory.img. */
export function inventoryDigest(dir: string): string {
  const p = path.join(dir, INVENTORY_FILE);
  const fd = openImage(p);
  try {
    return lazyCrypto().createHash('sha256').update(tryIo(`read ${p}`, () => fs.readFileSync(fd))).digest('hex');
  } finally {
    closeQuietly(fd);
  }
}

/**
 * The reference a set in `childDir` keeps to `parentDir` (absolute, or relative to
 * `childDir` as CRIU's --prev-images-dir is): stored relative, so that the two can move
 * together.
 */
export function parentRefFor(childDir: string, parentDir: string): ParentRef {
  const abs = path.resolve(childDir, parentDir);
  const rel = path.relative(path.resolve(childDir), abs);
  if (rel === '') throw new CkptError('USAGE', `Cannot use ${parentDir} as the parent images: it is the images directory itself`);
  return { dir: rel, inventorySha256: inventoryDigest(abs) };
}

/** The parent directory of the set in `dir`, checked against its reference. */
export function checkedParentDir(dir: string, ref: ParentRef): string {
  const abs = path.resolve(dir, ref.dir);
  const where = path.join(dir, INVENTORY_FILE);
  if (!fs.existsSync(path.join(abs, INVENTORY_FILE))) {
    throw badImage(where, `its parent images ${ref.dir} (${abs}) are missing; an incremental dump needs the images it was dumped against`);
  }
  const got = inventoryDigest(abs);
  if (got !== ref.inventorySha256) {
    throw badImage(where, `its parent images ${ref.dir} (${abs}) are not the ones it was dumped against (their inventory changed: sha256 ${got.slice(0, 12)}…, expected ${ref.inventorySha256.slice(0, 12)}…)`);
  }
  return abs;
}

/** Pages of one page file used by a chained reader: `runs` are pieces of `reader`'s runs. */
export interface PageLayer {
  reader: PageReader;
  runs: readonly Readonly<PageRun>[];
}

type Range = { start: bigint; end: bigint };
const PAGE = BigInt(PAGE_SIZE);
const rangeOf = (r: ParentRun): Range => ({ start: r.vaddr, end: r.vaddr + BigInt(r.nrPages) * PAGE });

/** The parts of sorted `ranges` inside sorted `runs`, as runs with their file offsets. */
export function piecesIn(ranges: readonly ParentRun[], runs: readonly PageRun[]): PageRun[] {
  const out: PageRun[] = [];
  let j = 0;
  for (const w of ranges.map(rangeOf)) {
    while (j < runs.length && rangeOf(runs[j]!).end <= w.start) j++;
    for (let k = j; k < runs.length; k++) {
      const r = runs[k]!;
      const rr = rangeOf(r);
      if (rr.start >= w.end) break;
      const from = rr.start > w.start ? rr.start : w.start;
      const to = rr.end < w.end ? rr.end : w.end;
      if (to > from) out.push({ vaddr: from, nrPages: Number((to - from) / PAGE), fileOffset: r.fileOffset + (from - r.vaddr) });
    }
  }
  return out;
}

/**
 * Where the pages `inParent` of a page file are: each parent in turn gives the pieces it
 * holds itself and passes on the pieces it had from its own parent. A page neither holds
 * was not present at the parent's dump and not written since: it is zero (no layer).
 */
export function resolveLayers(own: PageReader, parents: (depth: number) => PageReader | undefined): PageLayer[] {
  const layers: PageLayer[] = [{ reader: own, runs: own.runs }];
  let want: readonly ParentRun[] = own.inParent;
  for (let depth = 1; want.length > 0; depth++) {
    if (depth > MAX_CHAIN) throw badImage(own.path, `its chain of parent images is longer than ${MAX_CHAIN}`);
    const p = parents(depth);
    if (!p) throw badImage(own.path, `${want.length} runs of pages come from parent images that have no page file for it`);
    const found = piecesIn(want, p.runs);
    if (found.length > 0) layers.push({ reader: p, runs: found });
    want = piecesIn(want, p.inParent.map((r) => ({ ...r, fileOffset: 0n }))).map(({ vaddr, nrPages }) => ({ vaddr, nrPages }));
  }
  return layers;
}
