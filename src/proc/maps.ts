import { queryMaps } from './map-query.js';
import { forEachProcLine, malformed } from './procfs.js';

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
// a fixed column and then prints the name. Only the name may contain spaces. The
// line is parsed from its bytes: a process with 10 000 areas has 10 000 lines, read
// several times per dump (issue 13), and a regex, a string and three BigInt(string)
// per line were most of that.
const DELETED = ' (deleted)';
const SP = 0x20;

/**
 * The eight protections, and the device of anonymous memory, as shared frozen objects:
 * 10 000 areas need no object each for them (nothing changes an entry's fields).
 */
const PROTS = Array.from({ length: 8 }, (_, i) => Object.freeze({ read: (i & 1) !== 0, write: (i & 2) !== 0, exec: (i & 4) !== 0 }) as MapEntry['prot']);
const NO_DEVICE = Object.freeze({ major: 0, minor: 0 }) as MapEntry['dev'];

/** Where hex() stopped: the first byte that is not a lowercase hex digit. */
let cursor = 0;

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** A run of lowercase hex digits at pos (at least one), or -1; up to 13 digits fit a double exactly. */
function hex(buf: Buffer, pos: number, end: number): number {
  let v = 0;
  let i = pos;
  for (; i < end && i - pos < 13; i++) {
    const d = hexDigit(buf[i]!);
    if (d < 0) break;
    v = v * 16 + d;
  }
  cursor = i;
  return i === pos ? -1 : v;
}

/** A 64-bit hex field: the common case as a double, 14-16 digits (the [vsyscall] page) as a string. */
function hexBig(buf: Buffer, pos: number, end: number): bigint | undefined {
  const v = hex(buf, pos, end);
  if (v < 0) return undefined;
  if (cursor < end && hexDigit(buf[cursor]!) >= 0) {
    let i = cursor;
    while (i < end && hexDigit(buf[i]!) >= 0) i++;
    cursor = i;
    return BigInt(`0x${buf.toString('latin1', pos, i)}`);
  }
  return v === 0 ? 0n : BigInt(v);
}

function expect(buf: Buffer, end: number, c: number): boolean {
  if (cursor >= end || buf[cursor] !== c) return false;
  cursor++;
  return true;
}

function flag(buf: Buffer, at: number, yes: number): boolean | undefined {
  const c = buf[at];
  return c === yes ? true : c === 0x2d /* - */ ? false : undefined;
}

/** Parses the maps line in bytes [pos, end) of buf, or returns undefined if it is not one (smaps reuses this). */
export function parseMapLineAt(buf: Buffer, pos: number, end: number): MapEntry | undefined {
  const start = hexBig(buf, pos, end);
  if (start === undefined || !expect(buf, end, 0x2d)) return undefined;
  const stop = hexBig(buf, cursor, end);
  if (stop === undefined || !expect(buf, end, SP) || cursor + 5 > end) return undefined;
  const p = cursor;
  const read = flag(buf, p, 0x72);
  const write = flag(buf, p + 1, 0x77);
  const exec = flag(buf, p + 2, 0x78);
  const sp = buf[p + 3];
  if (read === undefined || write === undefined || exec === undefined || (sp !== 0x73 && sp !== 0x70)) return undefined;
  cursor = p + 4;
  if (!expect(buf, end, SP)) return undefined;
  const offset = hexBig(buf, cursor, end);
  if (offset === undefined || !expect(buf, end, SP)) return undefined;
  const major = hex(buf, cursor, end);
  if (major < 0 || !expect(buf, end, 0x3a)) return undefined;
  const minor = hex(buf, cursor, end);
  if (minor < 0 || !expect(buf, end, SP)) return undefined;
  let inode = 0;
  let i = cursor;
  for (; i < end && buf[i]! >= 0x30 && buf[i]! <= 0x39; i++) inode = inode * 10 + buf[i]! - 0x30;
  if (i === cursor) return undefined;
  // Padding precedes the name; paths are absolute or bracketed, so no name starts with a space.
  while (i < end && buf[i] === SP) i++;
  // A file literally named "x (deleted)" is indistinguishable here; callers that care
  // should confirm through /proc/PID/map_files. Newlines in names appear as "\012"
  // and are left escaped for the same reason (a backslash is not escaped).
  let path = i < end ? buf.toString('utf8', i, end) : '';
  const deleted = path.endsWith(DELETED);
  if (deleted) path = path.slice(0, -DELETED.length);
  return {
    start,
    end: stop,
    prot: PROTS[(read ? 1 : 0) | (write ? 2 : 0) | (exec ? 4 : 0)]!,
    shared: sp === 0x73,
    offset,
    dev: major === 0 && minor === 0 ? NO_DEVICE : { major, minor },
    inode,
    path,
    deleted,
  };
}

/** Parse one maps line, or return undefined if it is not one. */
export function parseMapLine(line: string): MapEntry | undefined {
  const buf = Buffer.from(line, 'utf8');
  return parseMapLineAt(buf, 0, buf.length);
}

function mapLine(buf: Buffer, start: number, end: number): MapEntry {
  const entry = parseMapLineAt(buf, start, end);
  if (entry === undefined) throw malformed('/proc/PID/maps', `unexpected line ${JSON.stringify(buf.toString('utf8', start, end))}`);
  return entry;
}

export function parseMaps(text: string): MapEntry[] {
  const out: MapEntry[] = [];
  const buf = Buffer.from(text, 'utf8');
  for (let pos = 0; pos < buf.length;) {
    let nl = buf.indexOf(0x0a, pos);
    if (nl < 0) nl = buf.length;
    if (nl > pos) out.push(mapLine(buf, pos, nl));
    pos = nl + 1;
  }
  return out;
}

/** Where the permissions of a maps line ("rwxp") start, after its address range; -1 if nowhere. */
function permsAt(buf: Buffer, start: number): number {
  const sp = buf.indexOf(SP, start);
  return sp < 0 ? -1 : sp + 1;
}

/**
 * A line's address range as doubles, or undefined for the parser to decide: 13 hex
 * digits fit a double exactly; a longer address (the [vsyscall] page) or an odd line does not.
 */
function rangeAt(buf: Buffer, start: number): [number, number] | undefined {
  const lo = hex(buf, start, buf.length);
  if (lo < 0 || buf[cursor] !== 0x2d) return undefined;
  const hi = hex(buf, cursor + 1, buf.length);
  if (hi < 0 || buf[cursor] !== SP) return undefined;
  return [lo, hi];
}

export interface MapsFilter {
  /** Only areas both readable and executable (code to inject from). */
  exec?: boolean;
  /** Only the area containing this address (at most one). */
  containing?: bigint;
  /** Only areas with this name (e.g. '[vdso]', a library's path; not one marked deleted). */
  path?: string;
  /** Only the first area that ends above this address (at most one; alone, not with the others). */
  after?: bigint;
  /** Only areas backed by a file (maps shows an inode: files, also shared memory and memfds). */
  files?: boolean;
}

/**
 * The areas of /proc/PID/maps, or with `filter` only those it asks for: by PROCMAP_QUERY
 * where the filter allows (map-query.ts), else from the text.
 */
export function readMaps(pid: number, filter: MapsFilter = {}): MapEntry[] {
  const { exec, containing, path, after, files } = filter;
  const out: MapEntry[] = queryMaps(pid, filter) ?? readMapsText(pid, filter);
  if (after !== undefined) return out.filter((m) => m.end > after).slice(0, 1);
  // The other conditions of the filter, exactly (a line kept above may still fail them).
  return out.filter((m) => (containing === undefined || (m.start <= containing && containing < m.end))
    && (path === undefined || (m.path === path && !m.deleted)) && (!exec || (m.prot.read && m.prot.exec)) && (!files || m.inode !== 0));
}

/**
 * readMaps from the text (kernels without PROCMAP_QUERY; exported for tests): lines
 * that cannot match the filter are skipped before they are parsed. Returns a superset.
 */
export function readMapsText(pid: number, filter: MapsFilter): MapEntry[] {
  const out: MapEntry[] = [];
  const { exec, containing, path, after } = filter;
  const near = containing === undefined ? 0 : Number(containing);
  const above = after === undefined ? 0 : Number(after);
  const name = path === undefined ? undefined : Buffer.from(` ${path}`);
  const keep = name ? (buf: Buffer, start: number, end: number) => {
    return end - start > name.length && buf.compare(name, 0, name.length, end - name.length, end) === 0;
  } : exec ? (buf: Buffer, start: number) => {
    const p = permsAt(buf, start);
    return p > 0 && buf[p] === 0x72 && buf[p + 2] === 0x78;
  } : containing !== undefined ? (buf: Buffer, start: number) => {
    const r = rangeAt(buf, start);
    return r === undefined || (r[0] <= near && near < r[1]);
  } : after !== undefined ? (buf: Buffer, start: number) => {
    const r = rangeAt(buf, start);
    return r === undefined || r[1] > above;
  } : undefined;
  forEachProcLine(pid, 'maps', (buf, start, end) => {
    if (end > start && (!keep || keep(buf, start, end))) out.push(mapLine(buf, start, end));
  });
  return out;
}
