/**
 * The pages a lazy restore still has to copy into one process: address ranges, sorted
 * and apart, each with the address its contents had at dump (`src`, where the page
 * file has them). A range moves when the process mremaps it, and goes when the process
 * unmaps or discards it (MADV_DONTNEED: the page must read as zeros, not as saved).
 */
export interface Piece {
  start: bigint;
  end: bigint;
  /** Saved address of `start` (the image is keyed by the address at dump). */
  src: bigint;
}

export class PendingPages {
  private segs: Piece[];

  constructor(segs: readonly Piece[]) {
    this.segs = segs.filter((s) => s.end > s.start).map((s) => ({ ...s })).sort((a, b) => (a.start < b.start ? -1 : 1));
  }

  get empty(): boolean {
    return this.segs.length === 0;
  }

  /** Bytes still to copy. */
  get bytes(): number {
    return this.segs.reduce((n, s) => n + Number(s.end - s.start), 0);
  }

  has(at: bigint): boolean {
    const i = this.firstEndingAfter(at);
    const s = this.segs[i];
    return s !== undefined && s.start <= at;
  }

  /** Removes and returns what is pending in [start, end). */
  take(start: bigint, end: bigint): Piece[] {
    const out: Piece[] = [];
    const keep: Piece[] = [];
    let i = this.firstEndingAfter(start);
    const first = i;
    for (; i < this.segs.length && this.segs[i]!.start < end; i++) {
      const s = this.segs[i]!;
      if (s.start < start) keep.push({ start: s.start, end: start, src: s.src });
      const from = s.start > start ? s.start : start;
      const to = s.end < end ? s.end : end;
      out.push({ start: from, end: to, src: s.src + (from - s.start) });
      if (s.end > end) keep.push({ start: end, end: s.end, src: s.src + (end - s.start) });
    }
    this.segs.splice(first, i - first, ...keep);
    return out;
  }

  /** Removes and returns up to `max` bytes from the front (one piece). */
  takeFront(max: number): Piece[] {
    const s = this.segs[0];
    if (!s) return [];
    const end = s.end - s.start > BigInt(max) ? s.start + BigInt(max) : s.end;
    return this.take(s.start, end);
  }

  /** Puts pieces back (a copy that has to wait for the process's layout change). */
  put(pieces: readonly Piece[]): void {
    for (const p of pieces) {
      if (p.end <= p.start) continue;
      const i = this.firstEndingAfter(p.start);
      this.segs.splice(i, 0, { ...p });
    }
  }

  /** mremap moved [from, from+len) to `to`: what was pending there is pending at the new place. */
  move(args: { from: bigint; to: bigint; len: bigint }): void {
    const moved = this.take(args.from, args.from + args.len);
    this.take(args.to, args.to + args.len);
    this.put(moved.map((p) => ({ start: p.start - args.from + args.to, end: p.end - args.from + args.to, src: p.src })));
  }

  /** What is pending, in order (copies). */
  pieces(): Piece[] {
    return this.segs.map((s) => ({ ...s }));
  }

  clone(): PendingPages {
    return new PendingPages(this.segs);
  }

  private firstEndingAfter(at: bigint): number {
    let lo = 0;
    let hi = this.segs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.segs[mid]!.end <= at) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
