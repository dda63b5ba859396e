/**
 * The memory areas of an image validated in one loop instead of one zod object per
 * area: a process with 10 000 areas spent ~300 ms in zod at dump and ~250 ms at
 * restore (issue 13). Accepts and yields exactly what `z.array(Vma)` does (vmas.test.ts
 * compares the two on mutated areas; flag lists are kept, not copied); the zod schema
 * stays the reference and the type.
 */
import { z } from 'zod';

const U64_MAX = (1n << 64n) - 1n;
const DECIMAL = /^-?[0-9]{1,20}$/;
const MAX_FLAGS = 64;
const MAX_NAME = 4096;
/** Guard regions of one area (each a separate madvise at restore). */
export const MAX_GUARDS = 65536;

/** What one area must look like; the first thing wrong is reported with its field. */
class Bad extends Error {
  constructor(readonly field: string, why: string) {
    super(why);
  }
}

/** zU64: a bigint, or a decimal string (an image), in [0, 2^64). */
function u64(v: unknown, field: string): bigint {
  let b: bigint;
  if (typeof v === 'bigint') b = v;
  else if (typeof v === 'string' && DECIMAL.test(v)) b = BigInt(v);
  else throw new Bad(field, 'expected a bigint or a decimal integer string');
  if (b < 0n || b > U64_MAX) throw new Bad(field, 'expected an unsigned 64-bit integer');
  return b;
}

function int(v: unknown, field: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) throw new Bad(field, `expected an integer in [0, ${max}]`);
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== 'boolean') throw new Bad(field, 'expected a boolean');
  return v;
}

/**
 * The list itself is kept (zod would copy it): at dump it is readSmaps's list, shared
 * by the areas with the same flags and frozen, and the array an image was parsed into
 * belongs to nobody else. The last list checked is remembered, as neighbours share it.
 */
function flagsOf(v: unknown, last: { list?: unknown }): string[] {
  if (!Array.isArray(v)) throw new Bad('flags', 'expected an array');
  if (v === last.list) return v as string[];
  if (v.length > MAX_FLAGS) throw new Bad('flags', `expected at most ${MAX_FLAGS} flags`);
  for (let i = 0; i < v.length; i++) {
    const f: unknown = v[i];
    if (typeof f !== 'string' || f.length > 4) throw new Bad('flags', 'expected strings of at most 4 characters');
  }
  last.list = v;
  return v as string[];
}

function vmaOf<K extends string>(v: unknown, ctx: { kinds: ReadonlySet<string>; flags: { list?: unknown } }): VmaShape<K> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Bad('', 'expected an object');
  const o = v as Record<string, unknown>;
  const kind = o['kind'];
  if (typeof kind !== 'string' || !ctx.kinds.has(kind)) throw new Bad('kind', 'expected a known kind');
  const out: VmaShape<K> = {
    start: u64(o['start'], 'start'),
    end: u64(o['end'], 'end'),
    prot: int(o['prot'], 'prot', 7),
    shared: bool(o['shared'], 'shared'),
    kind: kind as K,
    offset: u64(o['offset'], 'offset'),
    flags: flagsOf(o['flags'], ctx.flags),
  };
  extraOf(out, o);
  return out;
}

/**
 * Lists of areas built by the dump itself (readSmaps → toVma), whose objects hold only
 * Vma's keys: the schema checks them where they are, with the same checks, instead of
 * copying every area (10 000 areas: 10 000 objects and ~5 ms less per dump, issue 13).
 */
const built = new WeakSet<object>();

/** Marks `list` as areas the dump built (see `built`); returns it. */
export function builtAreas<T extends object[]>(list: T): T {
  built.add(list);
  return list;
}

/** vmaOf's checks on an area the dump built, which is kept as it is (it has no other keys to drop). */
function checkedInPlace<K extends string>(v: unknown, ctx: { kinds: ReadonlySet<string>; flags: { list?: unknown } }): VmaShape<K> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Bad('', 'expected an object');
  const o = v as Record<string, unknown>;
  const kind = o['kind'];
  if (typeof kind !== 'string' || !ctx.kinds.has(kind)) throw new Bad('kind', 'expected a known kind');
  u64(o['start'], 'start');
  u64(o['end'], 'end');
  int(o['prot'], 'prot', 7);
  bool(o['shared'], 'shared');
  u64(o['offset'], 'offset');
  flagsOf(o['flags'], ctx.flags);
  const area = o as unknown as VmaShape<K>;
  if (area.file !== undefined || area.shm !== undefined || area.inherited !== undefined || area.name !== undefined || area.guards !== undefined) extraOf(area, o);
  return area;
}

export interface VmaShape<K extends string> {
  start: bigint;
  end: bigint;
  prot: number;
  shared: boolean;
  kind: K;
  file?: number;
  offset: bigint;
  shm?: number;
  flags: string[];
  inherited?: boolean;
  name?: string;
  guards?: { start: bigint; end: bigint }[];
}

function guardsOf(v: unknown): { start: bigint; end: bigint }[] {
  if (!Array.isArray(v) || v.length > MAX_GUARDS) throw new Bad('guards', `expected an array of at most ${MAX_GUARDS} ranges`);
  return v.map((g: unknown) => {
    if (typeof g !== 'object' || g === null || Array.isArray(g)) throw new Bad('guards', 'expected objects');
    const o = g as Record<string, unknown>;
    return { start: u64(o['start'], 'guards'), end: u64(o['end'], 'guards') };
  });
}

/** What an area holds besides its row (optional fields, at most these five). */
function extraOf<K extends string>(out: VmaShape<K>, x: unknown): void {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) throw new Bad('', 'expected an object of optional fields');
  const o = x as Record<string, unknown>;
  if (o['file'] !== undefined) out.file = int(o['file'], 'file');
  if (o['shm'] !== undefined) out.shm = int(o['shm'], 'shm');
  if (o['inherited'] !== undefined) out.inherited = bool(o['inherited'], 'inherited');
  if (o['name'] !== undefined) {
    const name = o['name'];
    if (typeof name !== 'string' || name.length > MAX_NAME) throw new Bad('name', `expected a string of at most ${MAX_NAME} characters`);
    out.name = name;
  }
  if (o['guards'] !== undefined) out.guards = guardsOf(o['guards']);
}

/** A 64-bit field of a row: a JSON number up to 2^53 - 1, or a decimal string. */
function rowU64(v: unknown, field: string): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new Bad(field, 'expected an unsigned integer below 2^53 or a decimal string');
    return BigInt(v);
  }
  return u64(v, field);
}

const ROW_FIELDS = ['start', 'end', 'prot', 'shared', 'kind', 'offset', 'flags', 'extra'];

/** One row of the compact form: [start, end, prot, shared (0|1), kind, offset, flags index, optional fields?]. */
function rowOf<K extends string>(row: unknown, ctx: { kinds: ReadonlySet<string>; flags: readonly string[][] }): VmaShape<K> {
  if (!Array.isArray(row) || row.length < 7 || row.length > 8) throw new Bad('', 'expected a row of 7 or 8 fields');
  const r = row as unknown[];
  const kind = r[4];
  if (typeof kind !== 'string' || !ctx.kinds.has(kind)) throw new Bad('kind', 'expected a known kind');
  if (r[3] !== 0 && r[3] !== 1) throw new Bad('shared', 'expected 0 or 1');
  const fi = int(r[6], 'flags', ctx.flags.length - 1);
  const out: VmaShape<K> = {
    start: rowU64(r[0], 'start'),
    end: rowU64(r[1], 'end'),
    prot: int(r[2], 'prot', 7),
    shared: r[3] === 1,
    kind: kind as K,
    offset: rowU64(r[5], 'offset'),
    flags: ctx.flags[fi]!,
  };
  if (r.length === 8) extraOf(out, r[7]);
  return out;
}

/** Where a field is in a row, for the error's path (-1: one of the optional fields, or the row itself). */
function fieldIndex(field: string): number {
  return ROW_FIELDS.indexOf(field);
}

/**
 * The compact form (format 1.6): the distinct flag lists once, and a row of numbers per
 * area. 10 000 areas: ~0.5 MB instead of ~1.5 MB, and JSON.stringify/parse of rows
 * instead of 10 000 objects (issue 13). Addresses fit a JSON number exactly up to
 * 2^53 - 1; larger ones ([vsyscall]) are decimal strings.
 */
export interface CompactVmas {
  flags: string[][];
  rows: unknown[][];
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function num(v: bigint): number | string {
  return v <= SAFE ? Number(v) : v.toString(10);
}

export function compactVmas<K extends string>(list: readonly VmaShape<K>[]): CompactVmas {
  const flags: string[][] = [];
  // readSmaps gives one list per distinct set, shared: known by identity first, by contents once per list.
  const byList = new Map<readonly string[], number>();
  const byText = new Map<string, number>();
  const rows: unknown[][] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const v = list[i]!;
    let at = byList.get(v.flags);
    if (at === undefined) {
      const key = JSON.stringify(v.flags);
      at = byText.get(key);
      if (at === undefined) {
        at = flags.length;
        flags.push(v.flags);
        byText.set(key, at);
      }
      byList.set(v.flags, at);
    }
    const row: unknown[] = [num(v.start), num(v.end), v.prot, v.shared ? 1 : 0, v.kind, num(v.offset), at];
    if (v.file !== undefined || v.shm !== undefined || v.inherited !== undefined || v.name !== undefined || v.guards !== undefined) {
      const extra: Record<string, unknown> = {};
      if (v.file !== undefined) extra['file'] = v.file;
      if (v.shm !== undefined) extra['shm'] = v.shm;
      if (v.inherited !== undefined) extra['inherited'] = v.inherited;
      if (v.name !== undefined) extra['name'] = v.name;
      if (v.guards !== undefined) extra['guards'] = v.guards;
      row.push(extra);
    }
    rows[i] = row;
  }
  return { flags, rows };
}

/** The parsed list serializes to the compact form (JSON.stringify calls toJSON), which parses back to the same list. */
function writesCompact<K extends string>(list: VmaShape<K>[]): VmaShape<K>[] {
  Object.defineProperty(list, 'toJSON', { value: () => compactVmas(list), enumerable: false });
  return list;
}

interface Failure {
  bad: Bad;
  path: (string | number)[];
  input: unknown;
}

/** fn over every element, or where it first threw Bad (with the path pathOf gives). */
function mapChecked<T>(list: readonly unknown[], fn: (x: unknown) => T, pathOf: (e: Bad, i: number) => (string | number)[]): T[] | Failure {
  const out: T[] = new Array(list.length);
  for (let i = 0; i < list.length; i++) {
    try {
      out[i] = fn(list[i]);
    } catch (e) {
      if (!(e instanceof Bad)) throw e;
      return { bad: e, path: pathOf(e, i), input: list[i] };
    }
  }
  return out;
}

/**
 * A zod schema for the areas (at most `max`) that checks them in one loop: the list of
 * objects (formats up to 1.5) or the compact form (1.6), either way the list of objects.
 */
export function vmaList<K extends string>(kinds: readonly K[], max: number): z.ZodType<VmaShape<K>[], unknown> {
  const kindSet = new Set<string>(kinds);
  return z.unknown().transform((input, ctx) => {
    const fail = (message: string, path: (string | number)[], bad: unknown) => {
      ctx.issues.push({ code: 'custom', message, path, input: bad });
      return z.NEVER;
    };
    const failed = (r: Failure) => fail(r.bad.message, r.path, r.input);
    if (Array.isArray(input)) {
      if (input.length > max) return fail(`expected at most ${max} areas`, [], input);
      const flags: { list?: unknown } = {};
      const check = built.has(input) ? checkedInPlace : vmaOf;
      const out = mapChecked(input, (v) => check<K>(v, { kinds: kindSet, flags }), (e, i) => (e.field === '' ? [i] : [i, e.field]));
      return Array.isArray(out) ? writesCompact(out) : failed(out);
    }
    if (typeof input !== 'object' || input === null) return fail('expected a list of areas or their compact form', [], input);
    const o = input as Record<string, unknown>;
    const lists = o['flags'];
    const rows = o['rows'];
    if (!Array.isArray(lists) || lists.length > max) return fail(`expected at most ${max} flag lists`, ['flags'], lists);
    if (!Array.isArray(rows) || rows.length > max) return fail(`expected at most ${max} rows`, ['rows'], rows);
    const flags = mapChecked(lists, (l) => Object.freeze(flagsOf(l, {})) as string[], (_e, i) => ['flags', i]);
    if (!Array.isArray(flags)) return failed(flags);
    const out = mapChecked(rows, (row) => rowOf<K>(row, { kinds: kindSet, flags }), (e, i) => {
      const at = fieldIndex(e.field);
      return at < 0 ? ['rows', i] : ['rows', i, at];
    });
    if (!Array.isArray(out)) return failed(out);
    return writesCompact(out);
  }) as unknown as z.ZodType<VmaShape<K>[], unknown>;
}
