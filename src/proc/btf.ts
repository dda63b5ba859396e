/**
 * A minimal reader of the kernel's BTF (/sys/kernel/btf/vmlinux): type ids by kind and
 * name, and the byte offsets of struct members. Enough to give a BPF program the
 * offsets of fields no syscall shows (sys/bpf-iter.ts). Names are found by their string
 * offset (BTF stores each string once), so nothing is decoded but what is asked for.
 */
import { readFileSync } from 'node:fs';

export const BTF_KIND = { STRUCT: 4, FUNC: 12 } as const;

export interface Btf {
  /** The id of the first type of `kind` named `name`, or undefined. */
  find(kind: number, name: string): number | undefined;
  /** The byte offset of member `name` of struct `id` (undefined if absent or a bit field). */
  offsetOf(id: number, name: string): number | undefined;
  /** The value of enumerator `name` of any 32-bit enum (undefined if none has it). */
  enumValue(name: string): number | undefined;
}

/** Bytes each kind of type has after its 12-byte header, given its vlen. */
function trailer(kind: number, vlen: number): number {
  switch (kind) {
    case 1: case 14: case 17: return 4; // INT, VAR, DECL_TAG
    case 3: return 12; // ARRAY
    case 4: case 5: case 15: case 19: return 12 * vlen; // STRUCT, UNION, DATASEC, ENUM64
    case 6: case 13: return 8 * vlen; // ENUM, FUNC_PROTO
    default: return 0;
  }
}

export function parseBtf(b: Buffer): Btf {
  if (b.length < 24 || b.readUInt16LE(0) !== 0xeb9f) throw new Error('not a BTF blob');
  const hdrLen = b.readUInt32LE(4);
  const typeOff = hdrLen + b.readUInt32LE(8);
  const typeEnd = typeOff + b.readUInt32LE(12);
  const strOff = hdrLen + b.readUInt32LE(16);
  const strEnd = strOff + b.readUInt32LE(20);
  if (typeEnd > b.length || strEnd > b.length) throw new Error('truncated BTF blob');
  const at: number[] = [0]; // type id → its offset (id 0 is void)
  for (let p = typeOff; p + 12 <= typeEnd; ) {
    at.push(p);
    const info = b.readUInt32LE(p + 4);
    p += 12 + trailer((info >>> 24) & 0x1f, info & 0xffff);
  }
  const strings = b.subarray(strOff, strEnd);
  const nameOff = (name: string) => {
    const i = strings.indexOf(Buffer.from(`\0${name}\0`, 'latin1'));
    return i < 0 ? -1 : i + 1;
  };
  return {
    find(kind, name) {
      const n = nameOff(name);
      for (let id = 1; n > 0 && id < at.length; id++) {
        const o = at[id]!;
        if (b.readUInt32LE(o) === n && ((b.readUInt32LE(o + 4) >>> 24) & 0x1f) === kind) return id;
      }
      return undefined;
    },
    offsetOf(id, name) {
      const n = nameOff(name);
      // Members of anonymous structs and unions (`union { struct file *file; }`) count as the outer one's.
      const search = (tid: number, depth: number): number | undefined => {
        const o = at[tid];
        if (o === undefined || depth > 8) return undefined;
        const info = b.readUInt32LE(o + 4);
        const kind = (info >>> 24) & 0x1f;
        if (kind !== 4 && kind !== 5) return undefined;
        for (let i = 0; i < (info & 0xffff); i++) {
          const m = o + 12 + 12 * i;
          const bits = info >>> 31 ? b.readUInt32LE(m + 8) & 0xffffff : b.readUInt32LE(m + 8);
          const mname = b.readUInt32LE(m);
          if (mname === n) return bits % 8 === 0 ? bits / 8 : undefined;
          if (mname !== 0) continue;
          const inner = search(b.readUInt32LE(m + 4), depth + 1);
          if (inner !== undefined) return bits / 8 + inner;
        }
        return undefined;
      };
      return n > 0 ? search(id, 0) : undefined;
    },
    enumValue(name) {
      const n = nameOff(name);
      for (let id = 1; n > 0 && id < at.length; id++) {
        const o = at[id]!;
        const info = b.readUInt32LE(o + 4);
        if (((info >>> 24) & 0x1f) !== 6) continue; // ENUM
        for (let i = 0; i < (info & 0xffff); i++) {
          if (b.readUInt32LE(o + 12 + 8 * i) === n) return info >>> 31 ? b.readInt32LE(o + 16 + 8 * i) : b.readUInt32LE(o + 16 + 8 * i);
        }
      }
      return undefined;
    },
  };
}

let vmlinux: Btf | null | undefined;

/** The running kernel's BTF, read once; undefined when the kernel has none. */
export function kernelBtf(): Btf | undefined {
  if (vmlinux === undefined) {
    try {
      vmlinux = parseBtf(readFileSync('/sys/kernel/btf/vmlinux'));
    } catch {
      vmlinux = null;
    }
  }
  return vmlinux ?? undefined;
}
