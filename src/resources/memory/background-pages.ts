/**
 * Helpers of the background copy (background.ts): what PAGEMAP_SCAN says of a range, the
 * error of a page that changed before ckpt saved it, pieces cut to size.
 */
import { CkptError } from '../../common/errors.js';
import { PAGE_IS, pagemapScan } from '../../sys/ioctl.js';
import { readStat } from '../../proc/index.js';
import type { Piece } from './pending.js';

export interface Range {
  start: bigint;
  end: bigint;
}

/** The dump fails: the page at `at` of process `pid` is not as at the freeze any more. */
export function changed(pid: number, at: bigint): CkptError {
  if (!alive(pid)) return new CkptError('NO_PROCESS', `Cannot dump process ${pid} in the background: it exited before its pages were saved (a process that exits during the copy takes its memory with it); dump it again`);
  return new CkptError('UNSUPPORTED', `Cannot dump process ${pid} in the background: its page at 0x${at.toString(16)} changed before ckpt saved it (unmapped, discarded with madvise, or the process exec'd or exited); dump it again, or without --background`);
}

/** The present (or swapped) pages of `r` that are not write-protected: written since it was protected. */
export function notProtected(pagemapFd: number, r: Range): Range[] {
  const out: Range[] = [];
  for (let at = r.start; at < r.end;) {
    const { regions, walkEnd } = pagemapScan(pagemapFd, { start: at, end: r.end, categoryMask: PAGE_IS.WRITTEN, returnMask: PAGE_IS.WRITTEN, maxRegions: 1024 });
    for (const g of regions) out.push({ start: g.start, end: g.end });
    if (walkEnd <= at) throw new CkptError('INTERNAL', `Cannot scan written pages: PAGEMAP_SCAN made no progress at 0x${at.toString(16)}`);
    at = walkEnd;
  }
  return out;
}

/** Whether some of [start, end) is no mapping at all (PAGEMAP_SCAN reports every page of every area there, and nothing of a hole). */
export function hasHole(pagemapFd: number, r: Range): boolean {
  let at = r.start;
  for (;;) {
    const { regions, walkEnd } = pagemapScan(pagemapFd, { start: at, end: r.end, returnMask: PAGE_IS.PRESENT, maxRegions: 256 });
    for (const g of regions) {
      if (g.start !== at) return true;
      at = g.end;
    }
    if (walkEnd >= r.end || regions.length === 0) return at < r.end;
  }
}

/** A piece cut into pieces of at most `max` bytes. */
export function cutTo(q: Piece, max: number): Piece[] {
  if (q.len <= max) return [q];
  const out: Piece[] = [];
  for (let off = 0; off < q.len; off += max) out.push({ ...q, vaddr: q.vaddr + BigInt(off), len: Math.min(max, q.len - off), fileOffset: q.fileOffset + off });
  return out;
}

/** Whether `pid` still has its memory (not gone, not a zombie). */
function alive(pid: number): boolean {
  try {
    const state = readStat(pid).state;
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
