import { type MapEntry, parseMapLineAt } from './maps.js';
import { forEachProcChunk, malformed } from './procfs.js';

/**
 * A /proc/PID/smaps area: the maps line plus its VmFlags. The per-area counters (Rss,
 * Pss, Swap …) are not kept: nothing uses them, and a process with 10 000 areas has
 * ~250 000 of them (their parsing and garbage were most of its dump, issue 13).
 */
export type SmapsEntry = MapEntry & {
  /**
   * Two-letter VmFlags mnemonics, e.g. ['rd', 'wr', 'mr', 'mw', 'me', 'gd', 'ac']. Areas
   * with the same flags share one frozen array: copy it to change it.
   */
  vmFlags: string[];
};

/** An area's first line starts with its start address (lowercase hex); field names start with a capital. */
function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66);
}

const VMFLAGS = Buffer.from('VmFlags:');
/** The last line of every area (since Linux 3.8): an area's record ends with it. */
const VMFLAGS_LINE = Buffer.from('\nVmFlags:');
const DASH = 0x2d;
const NL = 0x0a;

/** Where the line starting at pos ends in [pos, end), or -1. */
function lineEnd(buf: Buffer, pos: number, end: number): number {
  const nl = buf.indexOf(NL, pos);
  return nl >= 0 && nl < end ? nl : -1;
}

/** Parses smaps area by area; one parser per file read, for its cache of flag lists. */
class SmapsParser {
  readonly out: SmapsEntry[] = [];
  /** Most areas share a handful of flag lists: one array per distinct list. */
  private flagLists = new Map<string, string[]>();

  /**
   * Bytes [0, filled) of the file (more follow unless eof); returns how many were
   * consumed. An area's ~25 counter lines are not looked at one by one: its header line
   * is parsed and its VmFlags line found with one search (10 000 areas: 250 000 lines).
   * Counter lines never hold a '-', which every header does; a '-' between a header
   * and the next VmFlags (a kernel printing something new, an area without VmFlags)
   * sends those lines through the line-by-line parser instead.
   */
  chunk(buf: Buffer, filled: number, eof: boolean): number {
    let pos = 0;
    while (pos < filled) {
      const nl = lineEnd(buf, pos, filled);
      if (nl < 0) {
        if (!eof) break;
        this.line(buf, pos, filled);
        return filled;
      }
      // A header: its record ends with the next VmFlags line (the buffer past `filled` is stale).
      const vf = isHexDigit(buf[pos]!) ? buf.indexOf(VMFLAGS_LINE, nl) : -1;
      const whole = vf >= 0 && vf + VMFLAGS_LINE.length <= filled;
      if (isHexDigit(buf[pos]!) && !whole && !eof) break;
      let vfEnd = whole ? lineEnd(buf, vf + 1, filled) : -1;
      if (whole && vfEnd < 0) {
        if (!eof) break;
        vfEnd = filled;
      }
      const dash = whole ? buf.indexOf(DASH, nl + 1) : -1;
      this.line(buf, pos, nl);
      if (!whole || (dash >= 0 && dash < vf)) {
        // Not a header, or an odd record: line by line up to the next header.
        pos = nl + 1;
        continue;
      }
      this.line(buf, vf + 1, vfEnd);
      pos = vfEnd + 1;
    }
    return Math.min(pos, filled);
  }

  line(buf: Buffer, pos: number, end: number): void {
    if (end === pos) return;
    const first = buf[pos]!;
    // Most lines are counters (Rss:, Pss: …): skipped on their first byte once an area began.
    if (first !== 0x56 /* V */ && !isHexDigit(first) && this.out.length > 0) return;
    const cur = this.out.at(-1);
    // Unknown shapes from newer kernels are skipped rather than fatal: nothing we
    // restore depends on a field we have never seen.
    const head = isHexDigit(first) ? parseMapLineAt(buf, pos, end) : undefined;
    if (head !== undefined) {
      this.out.push(Object.assign(head, { vmFlags: NO_FLAGS }));
    } else if (cur === undefined) {
      throw malformed('/proc/PID/smaps', `field before the first area: ${JSON.stringify(buf.toString('utf8', pos, end))}`);
    } else if (end - pos >= VMFLAGS.length && buf.compare(VMFLAGS, 0, VMFLAGS.length, pos, pos + VMFLAGS.length) === 0) {
      const text = buf.toString('latin1', pos + VMFLAGS.length, end);
      let flags = this.flagLists.get(text);
      if (flags === undefined) {
        flags = Object.freeze(text.trim().split(/\s+/).filter((f) => f !== '')) as string[];
        this.flagLists.set(text, flags);
      }
      cur.vmFlags = flags;
    }
  }
}

const NO_FLAGS = Object.freeze([]) as unknown as string[];

/** Parses smaps text, fed to the parser `piece` bytes at a time as reads would (tests vary it). */
export function parseSmaps(text: string, piece = Infinity): SmapsEntry[] {
  const p = new SmapsParser();
  const all = Buffer.from(text, 'utf8');
  const buf = Buffer.alloc(all.length);
  let have = 0;
  for (let at = 0; ;) {
    const got = Math.min(piece, all.length - at);
    all.copy(buf, have, at, at + got);
    at += got;
    const filled = have + got;
    const pos = p.chunk(buf, filled, got === 0);
    if (got === 0) break;
    have = filled - pos;
    buf.copy(buf, 0, pos, filled);
  }
  return p.out;
}

export function readSmaps(pid: number): SmapsEntry[] {
  const p = new SmapsParser();
  forEachProcChunk(pid, 'smaps', (buf, filled, eof) => p.chunk(buf, filled, eof));
  return p.out;
}
