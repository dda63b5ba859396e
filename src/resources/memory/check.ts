/**
 * Checks of a saved memory layout against itself and its page runs, run before
 * anything is built: image fields are untrusted, and an area that moved (its bounds
 * edited, or taken from another dump) must fail here, naming the area, rather than
 * map over another one or leave pages with nowhere to go.
 */
import { CkptError } from '../../common/errors.js';
import { hasOwnPages, isShmemArea, type MemoryState, type Vma } from './state.js';

const PAGE = 4096n;
/** The largest user address space x86-64 has (5-level paging); 4-level hosts refuse more at mmap. */
const USER_LIMIT = (1n << 56n) - PAGE;
/** The legacy vsyscall page is the one area above the user address space, always here. */
const VSYSCALL = { start: 0xffffffffff600000n, end: 0xffffffffff601000n };

export interface PageRuns {
  runs: readonly { vaddr: bigint; nrPages: number }[];
}

const hex = (n: bigint) => `0x${n.toString(16)}`;

/** Every area page-aligned, non-empty, in the user address space, sorted and apart; every index it holds valid. */
export function checkLayout(pid: number, state: MemoryState): void {
  const bad = (v: Vma, why: string) =>
    new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: area ${hex(v.start)}-${hex(v.end)} (${v.kind}) ${why}`);
  let prev: Vma | undefined;
  for (const v of state.vmas) {
    if (v.start % PAGE !== 0n || v.end % PAGE !== 0n) throw bad(v, 'is not page-aligned');
    if (v.end <= v.start) throw bad(v, 'ends before it starts');
    if (v.kind === 'vsyscall' ? v.start !== VSYSCALL.start || v.end !== VSYSCALL.end : v.end > USER_LIMIT) {
      throw bad(v, 'lies outside the user address space');
    }
    if (prev && v.start < prev.end) throw bad(v, `overlaps or comes before area ${hex(prev.start)}-${hex(prev.end)}`);
    if (v.kind === 'file' && !state.files[v.file ?? -1]) throw bad(v, `names file ${v.file ?? 'none'}, which is not in the image`);
    if (isShmemArea(v) && !state.shmem[v.shm ?? -1]) throw bad(v, `names shared memory object ${v.shm ?? 'none'}, which is not in the image`);
    if ((v.kind === 'file' || isShmemArea(v)) && v.offset % PAGE !== 0n) throw bad(v, `has file offset ${v.offset}, not page-aligned`);
    prev = v;
  }
  if (!state.files[state.exe]) throw new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: its executable (file ${state.exe}) is not in the image`);
}

/** The last answer of checkRuns per list of areas: the restore asks again for the same areas and runs (10 000 areas: ~5 ms a time). */
const checked = new WeakMap<readonly Vma[], { runs: PageRuns['runs']; filled: ReadonlySet<Vma> }>();

/**
 * Page runs are untrusted too: each must fall inside areas whose contents come from
 * the page file (private, not the kernel's). Returns the areas that get pages.
 */
export function checkRuns(pid: number, vmas: Vma[], pages: PageRuns): ReadonlySet<Vma> {
  const known = checked.get(vmas);
  if (known && known.runs === pages.runs) return known.filled;
  const filled = findFilled(pid, vmas, pages);
  checked.set(vmas, { runs: pages.runs, filled });
  return filled;
}

function findFilled(pid: number, vmas: Vma[], pages: PageRuns): Set<Vma> {
  const sorted = vmas.filter(hasOwnPages).sort((a, b) => (a.start < b.start ? -1 : 1));
  const filled = new Set<Vma>();
  let i = 0;
  for (const run of pages.runs) {
    const end = run.vaddr + BigInt(run.nrPages) * PAGE;
    // A run may span adjacent areas (the writer merges contiguous appends).
    let at = run.vaddr;
    while (at < end) {
      while (i < sorted.length && sorted[i]!.end <= at) i++;
      const v = sorted[i];
      if (!v || v.start > at) {
        const inside = vmas.find((a) => a.start <= at && at < a.end);
        const why = inside ? `in area ${hex(inside.start)}-${hex(inside.end)} (${inside.kind}${inside.shared ? ', shared' : ''}), which holds no saved pages` : 'outside any saved area';
        throw new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: page image has pages at ${hex(at)}, ${why}`);
      }
      filled.add(v);
      at = v.end < end ? v.end : end;
    }
  }
  return filled;
}

/** The pagemap must list as many pages as the dump recorded (when it did: images from before 1.1 do not say). */
export function checkPageCount(pid: number, state: MemoryState, pages: PageRuns & { inParent?: PageRuns['runs'] }): void {
  if (state.pages === undefined) return;
  const listed = pages.runs.reduce((n, r) => n + r.nrPages, 0);
  if (listed !== state.pages) {
    throw new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: its pagemap lists ${listed} pages, the dump saved ${state.pages}`);
  }
  const inParent = (pages.inParent ?? []).reduce((n, r) => n + r.nrPages, 0);
  if (inParent !== (state.inParent ?? 0)) {
    throw new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: its pagemap lists ${inParent} pages in the parent images, the dump left ${state.inParent ?? 0} there`);
  }
}
