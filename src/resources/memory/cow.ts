/**
 * Copy-on-write sharing between a parent and a child after fork ("do not double the
 * memory of a forking server"). At dump, a child's private area with the same bounds,
 * protection, flags and backing as one of its parent's is marked `inherited`, and its
 * pages still shared with the parent (present in both, not exclusive, same PFN) are
 * left out of the child's page file: the parent's copy is the same page.
 *
 * This is only right when the restore forks the child from its parent after the
 * parent's memory is rebuilt, so that the child inherits those pages (see
 * restoreMemory's `inherited` option). PFNs are visible only with CAP_SYS_ADMIN;
 * without them nothing is left out.
 */
import { closeSync } from 'node:fs';
import { openPagemap, readPagemapRange } from '../../proc/index.js';
import type { MemoryState, Vma } from './state.js';

/** What dumpMemory needs to know about the parent (dumped before, still stopped). */
export interface ParentMemory {
  pid: number;
  /** The parent's saved memory (the result of its dumpMemory). */
  state: MemoryState;
}

const PRESENT_HI = 0x80000000; // bit 63
const PFN_HI = 0x7fffff; // bits 32-54

function sameArea(a: Vma, b: Vma): boolean {
  return a.start === b.start && a.end === b.end && a.prot === b.prot && a.kind === b.kind && a.offset === b.offset &&
    a.file === b.file && !a.shared && !b.shared && a.flags.join(' ') === b.flags.join(' ');
}

/** Finds the child's areas inherited from the parent and clears, in pagemaps, the pages still shared. */
export class CowFilter {
  private byStart = new Map<bigint, Vma>();
  private fd: number;
  omitted = 0;

  constructor(private parent: ParentMemory) {
    for (const v of parent.state.vmas) this.byStart.set(v.start, v);
    this.fd = openPagemap(parent.pid);
  }

  /**
   * Marks `v` inherited when the parent has the same area (file areas: the same path;
   * file-table indexes differ between processes).
   */
  mark(v: Vma, filePath: (index: number | undefined) => string | undefined): boolean {
    const p = this.byStart.get(v.start);
    if (!p || !sameArea({ ...p, file: v.file }, v)) return false;
    if (v.kind === 'file' && this.parent.state.files[p.file ?? -1]?.path !== filePath(v.file)) return false;
    v.inherited = true;
    return true;
  }

  /**
   * Clears the entries of `pagemap` (the child's, for the part of area v from `start`)
   * whose page the parent maps too.
   */
  filter(v: Vma, window: { start: bigint; pagemap: Buffer }): void {
    if (!v.inherited) return;
    const { start, pagemap } = window;
    const parent = readPagemapRange(this.fd, start, start + BigInt(pagemap.length / 8) * 4096n);
    const n = Math.min(pagemap.length, parent.length) >> 3;
    for (let i = 0; i < n; i++) {
      const hi = pagemap.readUInt32LE(i * 8 + 4);
      // Same PFN in both decides; the exclusive bit (56) is only an estimate for large folios.
      if ((hi & PRESENT_HI) === 0) continue;
      const lo = pagemap.readUInt32LE(i * 8);
      if (lo === 0 && (hi & PFN_HI) === 0) continue; // no PFN without CAP_SYS_ADMIN
      const phi = parent.readUInt32LE(i * 8 + 4);
      if ((phi & PRESENT_HI) === 0 || parent.readUInt32LE(i * 8) !== lo || (phi & PFN_HI) !== (hi & PFN_HI)) continue;
      pagemap.writeUInt32LE(0, i * 8);
      pagemap.writeUInt32LE(0, i * 8 + 4);
      this.omitted++;
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}
