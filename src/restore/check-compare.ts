/**
 * How restore --check compares a saved state with its fresh reading: most come back
 * identical and are told so by `sameData` alone; the others are made comparable
 * (`canonical`: what legitimately differs after a restore) and walked for the fields
 * that differ.
 */

export const MAX_REPORTED = 8;

/**
 * Inode numbers and description ids are new after a restore: each is replaced by the
 * order of its first appearance, per key, so that only the pattern of sharing counts.
 */
const RELABELED: Record<string, string> = { ino: 'inode', peer: 'inode', inode: 'inode', waiting: 'inode', desc: 'desc', shmid: 'shmid' };
/** "pipe:[123]", "socket:[123]", "pipe:123", "memfd-123", "deleted-DEV-123": the number is an inode. */
const LINK = /^((?:pipe|socket|anon_inode:\w+|mqueue|fifo|memfd|shmem|deleted)[:-]\[?(?:\d+[:-])?)(\d+)(\]?)$/;
const LIVE_TCP = new Set(['sendSeq', 'recvSeq', 'sendQueue', 'unsent', 'recvQueue', 'window', 'timestamp']);
/** O_LARGEFILE: set by the kernel on every file a 64-bit process opens; it changes nothing there. */
const O_LARGEFILE = 0o100000;

export function canonical(value: unknown, labels: Map<string, Map<string, number>>, key = ''): unknown {
  const label = (k: string, v: string) => {
    let m = labels.get(k);
    if (!m) labels.set(k, (m = new Map()));
    if (!m.has(v)) m.set(v, m.size + 1);
    return `#${m.get(v)}`;
  };
  if (key === 'flags' && typeof value === 'number') return value & ~O_LARGEFILE;
  // Time left on an interval or POSIX timer (itimers, posixTimers), as for `value` below.
  if ((key === 'valueUs' || key === 'valueNs') && typeof value === 'bigint') return value !== 0n ? 'armed' : 'disarmed';
  // Images hold 64-bit values as decimal strings until a schema reads them.
  if (typeof value === 'bigint') return String(value);
  // epoll lists its watches in the order of its tree, which is by file address: new files, new order.
  if (key === 'watches' && Array.isArray(value)) {
    return [...value].sort((a: { tfd: number }, b: { tfd: number }) => a.tfd - b.tfd).map((v) => canonical(v, labels, key));
  }
  // A list of inodes (a listener's waiting clients) is relabeled item by item.
  if (Array.isArray(value)) return value.map((v) => (RELABELED[key] && typeof v === 'number' ? label(RELABELED[key]!, String(v)) : canonical(v, labels, key)));
  if (value !== null && typeof value === 'object') {
    if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
    // Time left on a timer goes down while the process is rebuilt: only whether it is armed must match.
    if (key === 'value' && isTime(value)) return Object.values(value).some((x) => BigInt(x as number) !== 0n) ? 'armed' : 'disarmed';
    const out: Record<string, unknown> = {};
    const live = 'sendSeq' in value && 'recvQueue' in value;
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) continue;
      // A TCP connection talks to its peer as soon as it is restored: what is in flight and the window move on.
      if (live && LIVE_TCP.has(k)) continue;
      // A regular file's size is the file's, not the process's: it may grow after the dump.
      if (k === 'size' && (value as { kind?: unknown }).kind === 'reg') continue;
      // Which inode a path led to: the restore compared it before opening (kinds/regular.ts); on another file system it differs by design.
      if (k === 'identity') continue;
      // Dump bookkeeping: which pages were left to the parent's page file (see cow.ts), and
      // how many went to this process's own; the pages themselves are compared one by one.
      if (k === 'inherited' || ((k === 'pages' || k === 'inParent') && typeof v === 'number')) continue;
      // Something whose name was removed is recreated under its old name when that is free,
      // else under a hidden one (nameless.ts): its name is gone either way.
      if (k === 'path' && ((value as { kind?: unknown }).kind === 'deleted' || 'deleted' in value)) continue;
      if (k === 'cwd' && 'cwdRemoved' in value) continue;
      // A standard fd handed over by the restorer is what the restorer gave, by design.
      if ((k === 'link' || k === 'tty') && (value as { kind?: unknown }).kind === 'inherit') continue;
      const space = RELABELED[k];
      out[k] = space && (typeof v === 'number' || typeof v === 'bigint') ? label(space, String(v)) : canonical(v, labels, k);
    }
    return out;
  }
  if (typeof value === 'string') {
    const m = LINK.exec(value);
    if (m) return `${m[1]}${label('inode', m[2]!)}${m[3]}`;
  }
  return value;
}

function isTime(v: object): v is Record<string, number | bigint> {
  const keys = Object.keys(v).sort().join(',');
  return keys === 'nsec,sec' || keys === 'sec,usec';
}

/** Paths where a and b differ (at most `max`). */
function differences(a: unknown, b: unknown, opts: { path: string; out: string[]; max: number }): void {
  const { path, out, max } = opts;
  if (out.length >= max) return;
  const show = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x))?.slice(0, 120) ?? 'nothing';
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || a === null || b === null || typeof a !== 'object') {
    if (a !== b) out.push(`${path}: saved ${show(a)}, restored ${show(b)}`);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length !== b.length) {
    // Name the entries themselves: "saved 23, restored 22" alone does not say which was lost.
    const key = (v: unknown) => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x)) ?? '';
    const inB = new Set(b.map(key));
    const inA = new Set(a.map(key));
    const lost = a.filter((x) => !inB.has(key(x))).slice(0, 3).map(show);
    const added = b.filter((x) => !inA.has(key(x))).slice(0, 3).map(show);
    const which = [lost.length ? ` (not restored: ${lost.join(', ')})` : '', added.length ? ` (not saved: ${added.join(', ')})` : ''].join('');
    out.push(`${path}: saved ${a.length} entries, restored ${b.length}${which}`);
    return;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(ao), ...Object.keys(bo)])) differences(ao[k], bo[k], { path: `${path}.${k}`, out, max });
}

/**
 * Returns a comparer that adds the differences it finds to `diffs`. Most states come
 * back identical (canonical() of equal values is equal): only the others are made
 * comparable and walked.
 */
export type Compare = (what: string, saved: unknown, restored: unknown) => void;

export function comparer(diffs: string[]): Compare {
  return (what, saved, restored) => {
    if (sameData(saved, restored)) return;
    differences(canonical(saved, new Map()), canonical(restored, new Map()), { path: what, out: diffs, max: diffs.length + MAX_REPORTED });
  };
}

/**
 * Whether two states are the same data: plain objects, arrays, primitives, bigints and
 * byte arrays, compared by value. Much cheaper than isDeepStrictEqual (no prototype,
 * descriptor or cycle bookkeeping). Conservative: anything else, or an own key whose
 * value is undefined on one side only, answers false, and the caller then compares the
 * canonical forms field by field; true only where those could not differ.
 */
export function sameData(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameData(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  if (a instanceof Uint8Array || b instanceof Uint8Array) return a instanceof Uint8Array && b instanceof Uint8Array && Buffer.compare(a, b) === 0;
  const proto = Object.getPrototypeOf(a) as unknown;
  if (proto !== Object.getPrototypeOf(b) || (proto !== Object.prototype && proto !== null)) return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = Object.keys(ao);
  if (keys.length !== Object.keys(bo).length) return false;
  for (const k of keys) if (!Object.hasOwn(bo, k) || !sameData(ao[k], bo[k])) return false;
  return true;
}
