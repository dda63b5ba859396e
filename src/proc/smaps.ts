import { type MapEntry, parseMapLine } from './maps.js';
import { malformed, readProcText } from './procfs.js';

/** A /proc/PID/smaps area: the maps line plus its per-area counters. */
export type SmapsEntry = MapEntry & {
  /** Every "Key: N kB" field (Size, Rss, Pss, Anonymous, Swap, Locked …), in bytes. */
  sizes: Record<string, number>;
  /** Fields without a unit (THPeligible, ProtectionKey …), as printed. */
  other: Record<string, number>;
  /** Two-letter VmFlags mnemonics, e.g. ['rd', 'wr', 'mr', 'mw', 'me', 'gd', 'ac']. */
  vmFlags: string[];
};

const FIELD = /^(\w+):\s+(\d+)( kB)?$/;

export function parseSmaps(text: string): SmapsEntry[] {
  const out: SmapsEntry[] = [];
  let cur: SmapsEntry | undefined;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const head = parseMapLine(line);
    if (head !== undefined) {
      cur = { ...head, sizes: {}, other: {}, vmFlags: [] };
      out.push(cur);
      continue;
    }
    if (cur === undefined) throw malformed('/proc/PID/smaps', `field before the first area: ${JSON.stringify(line)}`);
    if (line.startsWith('VmFlags:')) {
      cur.vmFlags = line.slice('VmFlags:'.length).trim().split(/\s+/).filter((f) => f !== '');
      continue;
    }
    const m = FIELD.exec(line);
    // Unknown shapes from newer kernels are skipped rather than fatal: nothing we
    // restore depends on a field we have never seen.
    if (m === null) continue;
    const [, key = '', value = '', kb] = m;
    if (kb !== undefined) cur.sizes[key] = Number(value) * 1024;
    else cur.other[key] = Number(value);
  }
  return out;
}

export function readSmaps(pid: number): SmapsEntry[] {
  return parseSmaps(readProcText(pid, 'smaps'));
}
