/**
 * Which pages of an area hold state that must be saved, from /proc/PID/pagemap: present
 * or swapped pages; in private file mappings only those no longer backed by the file
 * (written to, so copied on write: bit 61 clear). Works on the high 32-bit word of each
 * entry, as a typed array, since this runs for every page of the process.
 */
const PRESENT_OR_SWAPPED = 0xc0000000; // bits 63, 62
const FILE_PAGE = 0x20000000; // bit 61: file page or shared anonymous page

const SWAPPED = 0x40000000; // bit 62
/** Swap type 31 (bits 0-4 of a swap entry): SWP_PTE_MARKER, no page at all. */
const MARKER_TYPE = 0x1f;

/**
 * A pte marker, which pagemap shows as a swap entry of type 31: userfaultfd
 * write-protection leaves one on a page that was never populated (memory tracking,
 * track.ts). It holds no data. Seen only with PFNs visible (CAP_SYS_ADMIN); without,
 * it reads as swap type 0 and its page is saved as zeros, which is what it reads as.
 */
function isMarker(hi: number, lo: number): boolean {
  return (hi & SWAPPED) !== 0 && (hi & PRESENT_OR_SWAPPED & ~SWAPPED) === 0 && (lo & MARKER_TYPE) === MARKER_TYPE;
}

/** The pagemap as 32-bit words (two per entry), copied first if it is not 4-byte aligned. */
export function pagemapWords(pagemap: Buffer): Uint32Array {
  const src = pagemap.byteOffset % 4 === 0 ? pagemap : new Uint8Array(pagemap);
  return new Uint32Array(src.buffer, src.byteOffset, (pagemap.length >> 3) * 2);
}

/**
 * Appends to `out` the [firstPage, count] pairs of dumpable pages among entries
 * [from, to) of `words` (first page numbered from `from`). No allocation of its own:
 * planPages calls it for each of 10 000 areas over one buffer.
 */
export function spansIn(words: Uint32Array, range: { from: number; to: number; anonOnly: boolean }, out: number[]): void {
  const { from, to } = range;
  const mask = range.anonOnly ? PRESENT_OR_SWAPPED | FILE_PAGE : PRESENT_OR_SWAPPED;
  let i = from;
  while (i < to) {
    while (i < to && !wanted(words, i, mask)) i++;
    if (i === to) break;
    const first = i;
    while (i < to && wanted(words, i, mask)) i++;
    out.push(first - from, i - first);
  }
}

function wanted(words: Uint32Array, i: number, mask: number): boolean {
  const hi = words[2 * i + 1]!;
  return (hi & PRESENT_OR_SWAPPED) !== 0 && (hi & mask & FILE_PAGE) === 0 && !isMarker(hi, words[2 * i]!);
}

/** [firstPage, count] pairs, flattened. */
export function dumpableSpans(pagemap: Buffer, opts: { anonOnly: boolean }): number[] {
  const out: number[] = [];
  spansIn(pagemapWords(pagemap), { from: 0, to: pagemap.length >> 3, anonOnly: opts.anonOnly }, out);
  return out;
}

const EXCLUSIVE = 0x01000000; // bit 56: mapped by this process only

/**
 * [firstPage, count, exclusive] triples, flattened: the dumpable spans split where
 * exclusivity changes. A page that is not exclusive may be shared copy-on-write with
 * another process; reading it with process_vm_readv would make the kernel unshare it
 * (a read-only pin of a possibly shared anonymous page copies it), so such pages are
 * read through /proc/PID/mem, which leaves them shared.
 */
export function dumpableRuns(pagemap: Buffer, opts: { anonOnly: boolean }): number[] {
  const out: number[] = [];
  runsIn(pagemapWords(pagemap), { from: 0, to: pagemap.length >> 3, anonOnly: opts.anonOnly }, { spans: [], out });
  return out;
}

/** dumpableRuns over entries [from, to) of `words`, appended to `into.out`; `into.spans` is scratch. */
export function runsIn(words: Uint32Array, range: { from: number; to: number; anonOnly: boolean }, into: { spans: number[]; out: number[] }): void {
  const { spans, out } = into;
  spans.length = 0;
  spansIn(words, range, spans);
  for (let k = 0; k < spans.length; k += 2) {
    const end = spans[k]! + spans[k + 1]! + range.from;
    let i = spans[k]! + range.from;
    while (i < end) {
      const ex = words[2 * i + 1]! & EXCLUSIVE;
      const first = i;
      while (i < end && (words[2 * i + 1]! & EXCLUSIVE) === ex) i++;
      out.push(first - range.from, i - first, ex ? 1 : 0);
    }
  }
}

const UFFD_WP = 0x02000000; // bit 57: write-protected through a userfaultfd

/**
 * For a background dump (background.ts): the index of the first page of a pagemap window
 * that is no longer the page ckpt write-protected at the freeze, or -1 when every one
 * still is. A protected page cannot be written; one that was unmapped, discarded
 * (MADV_DONTNEED) or replaced (exec, a fault after a zap) is no longer present and
 * protected, or is a file page again.
 */
export function firstUnprotected(pagemap: Buffer): number {
  for (let i = 0; i < pagemap.length >> 3; i++) {
    const lo = pagemap.readUInt32LE(i * 8);
    const hi = pagemap.readUInt32LE(i * 8 + 4);
    if ((hi & PRESENT_OR_SWAPPED) === 0 || (hi & UFFD_WP) === 0 || (hi & FILE_PAGE) !== 0 || isMarker(hi, lo)) return i;
  }
  return -1;
}

/**
 * For a background dump of areas not planned at the freeze (background.ts): the
 * [firstPage, count, exclusive] triples of the pages still present (or swapped) and
 * write-protected, i.e. the pages of the freeze ckpt has not copied yet; in private file
 * mappings only the anonymous ones (copied on write). A page populated since the freeze
 * is not protected: it was empty then.
 */
export function protectedRuns(pagemap: Buffer, opts: { anonOnly: boolean }): number[] {
  const words = pagemapWords(pagemap);
  const out: number[] = [];
  const n = pagemap.length >> 3;
  const take = (i: number): number => {
    const hi = words[2 * i + 1]!;
    if ((hi & PRESENT_OR_SWAPPED) === 0 || (hi & UFFD_WP) === 0 || isMarker(hi, words[2 * i]!)) return -1;
    if (opts.anonOnly && (hi & FILE_PAGE) !== 0) return -1;
    return hi & EXCLUSIVE ? 1 : 0;
  };
  let i = 0;
  while (i < n) {
    const kind = take(i);
    if (kind < 0) {
      i++;
      continue;
    }
    const first = i;
    while (i < n && take(i) === kind) i++;
    out.push(first, i - first, kind);
  }
  return out;
}
