import { malformed, readProcText } from './procfs.js';

/** One line of /proc/PID/maps: a virtual memory area. */
export interface MapEntry {
  start: bigint;
  end: bigint;
  prot: { read: boolean; write: boolean; exec: boolean };
  /** 's' (MAP_SHARED) rather than 'p' (private, copy-on-write). */
  shared: boolean;
  offset: bigint;
  dev: { major: number; minor: number };
  inode: number;
  /** File path, a special name ([heap], [stack], [vdso], [anon:x] …), or '' for anonymous memory. */
  path: string;
  /** The kernel appended " (deleted)": the file was unlinked (also memfd and shmem mappings). */
  deleted: boolean;
}

// The kernel prints "start-end perms offset major:minor inode", pads with spaces to
// a fixed column and then prints the name. Only the name may contain spaces.
const LINE = /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])([sp]) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+) ?(.*)$/;
const DELETED = ' (deleted)';

/** Parse one maps line, or return undefined if it is not one (smaps reuses this). */
export function parseMapLine(line: string): MapEntry | undefined {
  const m = LINE.exec(line);
  if (m === null) return undefined;
  // Padding precedes the name; paths are absolute or bracketed, so no name starts with a space.
  let path = (m[11] ?? '').replace(/^ +/, '');
  // A file literally named "x (deleted)" is indistinguishable here; callers that care
  // should confirm through /proc/PID/map_files. Newlines in names appear as "\012"
  // and are left escaped for the same reason (a backslash is not escaped).
  const deleted = path.endsWith(DELETED);
  if (deleted) path = path.slice(0, -DELETED.length);
  return {
    start: BigInt(`0x${m[1]}`),
    end: BigInt(`0x${m[2]}`),
    prot: { read: m[3] === 'r', write: m[4] === 'w', exec: m[5] === 'x' },
    shared: m[6] === 's',
    offset: BigInt(`0x${m[7]}`),
    dev: { major: parseInt(m[8] ?? '', 16), minor: parseInt(m[9] ?? '', 16) },
    inode: Number(m[10]),
    path,
    deleted,
  };
}

export function parseMaps(text: string): MapEntry[] {
  const out: MapEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const entry = parseMapLine(line);
    if (entry === undefined) throw malformed('/proc/PID/maps', `unexpected line ${JSON.stringify(line)}`);
    out.push(entry);
  }
  return out;
}

export function readMaps(pid: number): MapEntry[] {
  return parseMaps(readProcText(pid, 'maps'));
}
