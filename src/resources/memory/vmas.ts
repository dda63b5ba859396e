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
  if (o['file'] !== undefined) out.file = int(o['file'], 'file');
  if (o['shm'] !== undefined) out.shm = int(o['shm'], 'shm');
  if (o['inherited'] !== undefined) out.inherited = bool(o['inherited'], 'inherited');
  if (o['name'] !== undefined) {
    const name = o['name'];
    if (typeof name !== 'string' || name.length > MAX_NAME) throw new Bad('name', `expected a string of at most ${MAX_NAME} characters`);
    out.name = name;
  }
  if (o['guards'] !== undefined) out.guards = guardsOf(o['guards']);
  return out;
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

/** A zod schema for an array of areas (at most `max`) that checks them in one loop. */
export function vmaList<K extends string>(kinds: readonly K[], max: number): z.ZodType<VmaShape<K>[], unknown> {
  const kindSet = new Set<string>(kinds);
  return z.array(z.unknown()).max(max).transform((list, ctx) => {
    const flags: { list?: unknown } = {};
    const out: VmaShape<K>[] = new Array(list.length);
    for (let i = 0; i < list.length; i++) {
      try {
        out[i] = vmaOf<K>(list[i], { kinds: kindSet, flags });
      } catch (e) {
        if (!(e instanceof Bad)) throw e;
        ctx.issues.push({ code: 'custom', message: e.message, path: e.field === '' ? [i] : [i, e.field], input: list[i] });
        return z.NEVER;
      }
    }
    return out;
  }) as unknown as z.ZodType<VmaShape<K>[], unknown>;
}
