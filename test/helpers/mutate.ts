/**
 * Mutations of a valid image set, for the fuzz test: raw damage (bit flips,
 * truncation, extension, files swapped with another set's, huge header fields) that
 * the checksums must catch, and semantic tampering (a JSON field changed, with every
 * checksum recomputed) that only the schemas and consistency checks can catch.
 */
import { chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '../../src/images/crc32.js';
import { encodeMetaImage } from '../../src/images/format.js';

/** A small deterministic PRNG (mulberry32), so a failing mutant can be made again from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Rand = () => number;
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const int = (r: Rand, n: number) => Math.floor(r() * n);

export function copySet(from: string, to: string): void {
  mkdirSync(to, { recursive: true, mode: 0o700 });
  for (const f of readdirSync(from)) copyFileSync(join(from, f), join(to, f));
}

interface Meta {
  kind: string;
  json: unknown;
}

function parseMeta(buf: Buffer): Meta | undefined {
  if (buf.length < 32 || buf.toString('latin1', 0, 8) !== 'CKPTIMG\0') return undefined;
  const k = buf.readUInt32LE(16);
  const kind = buf.toString('utf8', 20, 20 + k);
  return { kind, json: JSON.parse(buf.toString('utf8', 32 + k)) };
}

const encode = (m: Meta) => encodeMetaImage(m.kind, Buffer.from(JSON.stringify(m.json)));

/** Rewrites metadata image FILE of DIR with `json` and puts its new size and CRC into the inventory. */
export function rewriteMeta(dir: string, file: string, json: unknown): void {
  const old = parseMeta(readFileSync(join(dir, file)))!;
  const bytes = encode({ kind: old.kind, json });
  writeFileSync(join(dir, file), bytes);
  if (file === 'inventory.img') return;
  const inv = parseMeta(readFileSync(join(dir, 'inventory.img')))!;
  const files = (inv.json as { files: { name: string; size: number; crc32: number | null }[] }).files;
  const e = files.find((x) => x.name === file);
  if (e) {
    e.size = bytes.length;
    e.crc32 = crc32(bytes);
  }
  writeFileSync(join(dir, 'inventory.img'), encode(inv));
}

export function readMetaJson(dir: string, file: string): unknown {
  return parseMeta(readFileSync(join(dir, file)))?.json;
}

const metaFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.img') && !f.startsWith('pages-'));

// ---- raw damage ----

function flip(dir: string, r: Rand): string {
  const f = pick(r, readdirSync(dir));
  const buf = readFileSync(join(dir, f));
  if (buf.length === 0) return `flip: ${f} is empty`;
  const at = int(r, buf.length);
  const bit = int(r, 8);
  buf[at]! ^= 1 << bit;
  writeFileSync(join(dir, f), buf);
  return `flip bit ${bit} of byte ${at} of ${f}`;
}

function truncate(dir: string, r: Rand): string {
  const f = pick(r, readdirSync(dir));
  const buf = readFileSync(join(dir, f));
  const len = r() < 0.5 ? int(r, buf.length) : Math.max(0, buf.length - 1 - int(r, 64));
  writeFileSync(join(dir, f), buf.subarray(0, len));
  return `truncate ${f} to ${len} of ${buf.length} bytes`;
}

function extend(dir: string, r: Rand): string {
  const f = pick(r, readdirSync(dir));
  const n = pick(r, [1, 7, 4096, 65536]);
  const extra = Buffer.alloc(n, r() < 0.5 ? 0 : 0xa5);
  writeFileSync(join(dir, f), Buffer.concat([readFileSync(join(dir, f)), extra]));
  return `extend ${f} by ${n} bytes`;
}

/** A file of the other set put in place of the file of the same kind; with `fixInventory`, the inventory is made to match. */
function swap(dir: string, args: { r: Rand; other: string; fixInventory: boolean }): string {
  const { r, other, fixInventory } = args;
  const kindOf = (f: string) => f.replace(/-\d+\.(img|blob)$/, '');
  const f = pick(r, readdirSync(dir).filter((x) => x !== 'inventory.img'));
  const theirs = readdirSync(other).filter((x) => kindOf(x) === kindOf(f));
  if (theirs.length === 0) return `swap: no ${kindOf(f)} in the other set`;
  const t = pick(r, theirs);
  const bytes = readFileSync(join(other, t));
  writeFileSync(join(dir, f), bytes);
  if (fixInventory) {
    const invPath = 'inventory.img';
    const inv = readMetaJson(dir, invPath) as { files: { name: string; size: number; crc32: number | null }[] };
    const e = inv.files.find((x) => x.name === f);
    if (e) {
      e.size = bytes.length;
      if (e.crc32 !== null) e.crc32 = crc32(bytes);
    }
    rewriteMeta(dir, invPath, inv);
  }
  return `swap ${f} with the other set's ${t}${fixInventory ? ', inventory fixed' : ''}`;
}

/** Huge values in a metadata header: payload length, kind length, version. */
function hugeHeader(dir: string, r: Rand): string {
  const f = pick(r, metaFiles(dir));
  const buf = readFileSync(join(dir, f));
  const k = buf.readUInt32LE(16);
  const field = pick(r, ['payload', 'kind', 'major', 'minor'] as const);
  if (field === 'payload') buf.writeBigUInt64LE(pick(r, [0xffffffffffffffffn, 1n << 40n, BigInt(buf.length)]), 20 + k);
  if (field === 'kind') buf.writeUInt32LE(pick(r, [0xffffffff, 65, 0]), 16);
  if (field === 'major') buf.writeUInt32LE(pick(r, [0, 0xffffffff]), 8);
  if (field === 'minor') buf.writeUInt32LE(0xffffffff, 12);
  writeFileSync(join(dir, f), buf);
  return `huge ${field} in the header of ${f}`;
}

// ---- semantic tampering, checksums recomputed ----

type Path = (string | number)[];

function leaves(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  if (v !== null && typeof v === 'object') {
    out.push(at); // containers too: they can be emptied or replaced
    for (const [k, x] of Object.entries(v)) leaves(x, [...at, Array.isArray(v) ? Number(k) : k], out);
  } else out.push(at);
  return out;
}

function setAt(root: unknown, at: Path, value: unknown): unknown {
  if (at.length === 0) return value;
  let o = root as Record<string | number, unknown>;
  for (const k of at.slice(0, -1)) o = o[k] as Record<string | number, unknown>;
  o[at.at(-1)!] = value;
  return root;
}

const getAt = (root: unknown, at: Path) => at.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], root);

/** Values that break assumptions: extremes, wrong types, hostile paths. */
function extreme(r: Rand, old: unknown): unknown {
  const common = [null, true, {}, [], '', -1, 0, 2 ** 53, -(2 ** 53), 1e308, 0.5, '-1', '0', '18446744073709551615', '340282366920938463463374607431768211456', 'x'.repeat(70000)];
  const byType: unknown[] =
    typeof old === 'number' ? [old + 1, old - 1, old * 4096, old + 4096, -old, 0xffffffff, 2 ** 31, 2 ** 32]
    : typeof old === 'string' && /^\d+$/.test(old) ? [String(BigInt(old) + 4096n), String(BigInt(old) - 4096n), String(BigInt(old) + 1n), String(BigInt(old) << 20n), '0', '140737488355328', '18446744073709547520']
    : typeof old === 'string' && old.startsWith('/') ? ['/etc/shadow', '/nonexistent/x', '/proc/self/mem', '/dev/mem', `${old}/../../etc/passwd`, '/', 'relative/path', `/${'a'.repeat(5000)}`]
    : typeof old === 'string' ? ['../../etc/passwd', 'a/b', '\0', 'ckpt-blank']
    : Array.isArray(old) ? [[...old, ...old], old.slice(1), old.slice(0, -1), [...old].reverse(), Array(100000).fill(old[0] ?? 0)]
    : [];
  return pick(r, r() < 0.7 && byType.length ? byType : common);
}

function tamper(dir: string, r: Rand): string {
  const f = pick(r, metaFiles(dir));
  const json = readMetaJson(dir, f);
  const at = pick(r, leaves(json));
  const old = getAt(json, at);
  const value = extreme(r, old);
  rewriteMeta(dir, f, setAt(json, at, value));
  const shown = JSON.stringify(value) ?? 'undefined';
  return `set ${f}:${at.join('.') || '(root)'} to ${shown.length > 60 ? `${shown.slice(0, 60)}…` : shown}`;
}

/** The credentials of a process raised to root with every capability. */
export function raiseCreds(dir: string, r: Rand): string {
  const f = pick(r, readdirSync(dir).filter((x) => x.startsWith('core-')));
  const json = readMetaJson(dir, f) as { resources: { creds?: Record<string, unknown> } };
  const c = json.resources.creds;
  if (!c) return `raise: no creds in ${f}`;
  const all = String((1n << 41n) - 1n);
  c.uid = [0, 0, 0, 0];
  c.gid = [0, 0, 0, 0];
  c.groups = [0];
  c.caps = { inh: all, prm: all, eff: all, bnd: all, amb: '0' };
  rewriteMeta(dir, f, json);
  return `raise the credentials in ${f} to root with every capability`;
}

/** The uid and gid of nobody: image sets "owned by an unprivileged user". */
export const NOBODY = 65534;

/** Hands the set to nobody, as if an unprivileged user had written it. */
export function giveToNobody(dir: string): void {
  chownSync(dir, NOBODY, NOBODY);
  for (const f of readdirSync(dir)) chownSync(join(dir, f), NOBODY, NOBODY);
}

export type MutantKind = 'owner-probe' | 'flip' | 'truncate' | 'extend' | 'swap' | 'swap-fixed' | 'huge' | 'tamper' | 'creds';
/** Raw damage the checksums must catch: the victim either is refused or restores and passes its check. */
export const RAW: readonly MutantKind[] = ['flip', 'truncate', 'extend', 'swap', 'huge'];

/** Applies one mutation of `kind` to the set in DIR; returns what it did. */
export function mutate(dir: string, args: { kind: MutantKind; r: Rand; other: string }): string {
  const { kind, r, other } = args;
  switch (kind) {
    case 'flip': return flip(dir, r);
    case 'truncate': return truncate(dir, r);
    case 'extend': return extend(dir, r);
    case 'swap': return swap(dir, { r, other, fixInventory: false });
    case 'swap-fixed': return swap(dir, { r, other, fixInventory: true });
    case 'huge': return hugeHeader(dir, r);
    case 'tamper': return tamper(dir, r);
    case 'creds': {
      const what = raiseCreds(dir, r);
      giveToNobody(dir);
      return `${what}, the set owned by nobody`;
    }
    case 'owner-probe':
      giveToNobody(dir);
      return 'the set of a root process, unchanged, owned by nobody';
  }
}
