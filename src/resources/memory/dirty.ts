/**
 * Incremental dumps: of the dumpable pages of an area tracked since the parent round,
 * those not written since stay in the parent's page file. They are cleared from the
 * pagemap window (so dumpableRuns skips them) and listed as parent runs.
 */
import { dumpableSpans } from './pages.js';
import type { AddressRange } from './track.js';

const PAGE = 4096n;

/** Clears the unwritten dumpable pages of a pagemap window; returns them as [vaddr, nrPages] runs, ascending. */
export function takeUnwritten(pagemap: Buffer, args: { start: bigint; written: readonly AddressRange[]; anonOnly: boolean }): { vaddr: bigint; nrPages: number }[] {
  const { start, written } = args;
  const spans = dumpableSpans(pagemap, { anonOnly: args.anonOnly });
  const out: { vaddr: bigint; nrPages: number }[] = [];
  const keep = (from: bigint, to: bigint) => {
    if (to <= from) return;
    const first = Number((from - start) / PAGE);
    const n = Number((to - from) / PAGE);
    pagemap.fill(0, first * 8, (first + n) * 8);
    const last = out.at(-1);
    if (last && last.vaddr + BigInt(last.nrPages) * PAGE === from) last.nrPages += n;
    else out.push({ vaddr: from, nrPages: n });
  };
  let j = 0;
  for (let k = 0; k < spans.length; k += 2) {
    let at = start + BigInt(spans[k]!) * PAGE;
    const end = at + BigInt(spans[k + 1]!) * PAGE;
    while (j < written.length && written[j]!.end <= at) j++;
    for (let i = j; i < written.length && at < end; i++) {
      const w = written[i]!;
      if (w.start >= end) break;
      keep(at, w.start < end ? w.start : end);
      if (w.end > at) at = w.end < end ? w.end : end;
    }
    keep(at, end);
  }
  return out;
}
