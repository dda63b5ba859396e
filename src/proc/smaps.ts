import { type MapEntry, parseMapLineAt } from './maps.js';
import { forEachProcLine, malformed } from './procfs.js';

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

/** Parses smaps line by line; one parser per file read, for its cache of flag lists. */
class SmapsParser {
  readonly out: SmapsEntry[] = [];
  /** Most areas share a handful of flag lists: one array per distinct list. */
  private flagLists = new Map<string, string[]>();

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

export function parseSmaps(text: string): SmapsEntry[] {
  const p = new SmapsParser();
  const buf = Buffer.from(text, 'utf8');
  for (let pos = 0; pos < buf.length;) {
    let nl = buf.indexOf(0x0a, pos);
    if (nl < 0) nl = buf.length;
    p.line(buf, pos, nl);
    pos = nl + 1;
  }
  return p.out;
}

export function readSmaps(pid: number): SmapsEntry[] {
  const p = new SmapsParser();
  forEachProcLine(pid, 'smaps', (buf, start, end) => p.line(buf, start, end));
  return p.out;
}
