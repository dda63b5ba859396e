/**
 * The pages a background dump has still to copy from one process: pieces of its address
 * space, ascending and apart, each with the place in the page file reserved for it.
 * Faults and events take pieces out of the middle; mremap moves them.
 */

/** Pages at `vaddr` in the process, at `fileOffset` in its page file. */
export interface Piece {
  vaddr: bigint;
  len: number;
  fileOffset: number;
  /** Read through /proc/PID/mem (see copy.ts). */
  viaMem: boolean;
  /**
   * Not planned at the freeze (background.ts, areas protected before it): the pages to
   * copy are the ones pagemap shows still present and protected when ckpt comes to them;
   * they get their place in the page file then (fileOffset is meaningless).
   */
  scan?: { anonOnly: boolean; readable: boolean };
}

function endOf(p: Piece): bigint {
  return p.vaddr + BigInt(p.len);
}

function cut(p: Piece, from: bigint, to: bigint): Piece {
  const q: Piece = { vaddr: from, len: Number(to - from), fileOffset: p.fileOffset + Number(from - p.vaddr), viaMem: p.viaMem };
  if (p.scan) q.scan = p.scan;
  return q;
}

export class PendingPages {
  private pieces: Piece[] = [];
  private total = 0;

  /** Appends a piece above every piece already there. */
  push(p: Piece): void {
    const last = this.pieces.at(-1);
    if (last && p.vaddr < endOf(last)) throw new Error(`pending pages: 0x${p.vaddr.toString(16)} is below the previous piece`);
    this.pieces.push({ ...p });
    this.total += p.len;
  }

  get bytes(): number {
    return this.total;
  }

  /** Whether the lowest pending piece is one to scan (Piece.scan). */
  get firstScanned(): boolean {
    return this.pieces[0]?.scan !== undefined;
  }

  get empty(): boolean {
    return this.pieces.length === 0;
  }

  /** Whether anything is pending in [start, end). */
  has(start: bigint, end: bigint): boolean {
    const i = this.firstEndingAbove(start);
    return i < this.pieces.length && this.pieces[i]!.vaddr < end;
  }

  private firstEndingAbove(start: bigint): number {
    const list = this.pieces;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (endOf(list[mid]!) <= start) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Takes out whatever is pending in [start, end), ascending. */
  take(start: bigint, end: bigint): Piece[] {
    const list = this.pieces;
    const lo = this.firstEndingAbove(start);
    const out: Piece[] = [];
    const keep: Piece[] = [];
    let j = lo;
    for (; j < list.length && list[j]!.vaddr < end; j++) {
      const p = list[j]!;
      const from = p.vaddr > start ? p.vaddr : start;
      const to = endOf(p) < end ? endOf(p) : end;
      if (from > p.vaddr) keep.push(cut(p, p.vaddr, from));
      out.push(cut(p, from, to));
      if (to < endOf(p)) keep.push(cut(p, to, endOf(p)));
    }
    if (out.length > 0) list.splice(lo, j - lo, ...keep);
    for (const p of out) this.total -= p.len;
    return out;
  }

  /** Takes the lowest pending pages: up to `bytes`, in at most `maxPieces` pieces. */
  takeFirst(args: { bytes: number; maxPieces: number }): Piece[] {
    const out: Piece[] = [];
    let left = args.bytes;
    while (left > 0 && out.length < args.maxPieces && this.pieces.length > 0) {
      const p = this.pieces[0]!;
      if (p.len <= left) {
        this.pieces.shift();
        out.push(p);
        left -= p.len;
      } else {
        const to = p.vaddr + BigInt(left);
        out.push(cut(p, p.vaddr, to));
        this.pieces[0] = cut(p, to, endOf(p));
        left = 0;
      }
    }
    for (const p of out) this.total -= p.len;
    return out;
  }

  /** Pieces taken out and not copied after all: pending again. */
  putBack(pieces: readonly Piece[]): void {
    for (const p of pieces) {
      this.pieces.push({ ...p });
      this.total += p.len;
    }
    this.sortPieces();
  }

  private sortPieces(): void {
    this.pieces.sort((a, b) => (a.vaddr < b.vaddr ? -1 : a.vaddr > b.vaddr ? 1 : 0));
  }

  /** mremap moved [from, from+len) to `to`: what was pending there is pending at the new place. */
  move(args: { from: bigint; to: bigint; len: bigint }): void {
    const moved = this.take(args.from, args.from + args.len);
    if (moved.length === 0) return;
    const delta = args.to - args.from;
    // What was pending at the destination was unmapped by the mremap: its own unmap event
    // takes it (and the dump fails, those pages are gone), before or after these.
    for (const p of moved) {
      p.vaddr += delta;
      this.total += p.len;
    }
    this.pieces.push(...moved);
    this.sortPieces();
  }
}
