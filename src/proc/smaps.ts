import { type MapEntry, parseMapLine } from './maps.js';
import { malformed, readProcText } from './procfs.js';

/**
 * A /proc/PID/smaps area: the maps line plus its VmFlags. The per-area counters (Rss,
 * Pss, Swap …) are not kept: nothing uses them, and a process with 10 000 areas has
 * ~250 000 of them (their parsing and garbage were most of its dump, issue 13).
 */
export type SmapsEntry = MapEntry & {
  /** Two-letter VmFlags mnemonics, e.g. ['rd', 'wr', 'mr', 'mw', 'me', 'gd', 'ac']. */
  vmFlags: string[];
};

/** An area's first line starts with its start address (lowercase hex); field names start with a capital. */
function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66);
}

export function parseSmaps(text: string): SmapsEntry[] {
  const out: SmapsEntry[] = [];
  let cur: SmapsEntry | undefined;
  for (let pos = 0; pos < text.length;) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    if (nl > pos) {
      // Unknown shapes from newer kernels are skipped rather than fatal: nothing we
      // restore depends on a field we have never seen.
      const head = isHexDigit(text.charCodeAt(pos)) ? parseMapLine(text.slice(pos, nl)) : undefined;
      if (head !== undefined) {
        cur = { ...head, vmFlags: [] };
        out.push(cur);
      } else if (cur === undefined) {
        throw malformed('/proc/PID/smaps', `field before the first area: ${JSON.stringify(text.slice(pos, nl))}`);
      } else if (text.startsWith('VmFlags:', pos)) {
        cur.vmFlags = text.slice(pos + 'VmFlags:'.length, nl).trim().split(/\s+/).filter((f) => f !== '');
      }
    }
    pos = nl + 1;
  }
  return out;
}

export function readSmaps(pid: number): SmapsEntry[] {
  return parseSmaps(readProcText(pid, 'smaps'));
}
