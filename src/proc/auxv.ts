import { readProcBuffer } from './procfs.js';

/** An auxiliary vector entry (AT_* type, value). */
export interface AuxvEntry {
  type: number;
  value: bigint;
}

export const AT_NULL = 0;

/** Decode /proc/PID/auxv (pairs of little-endian u64), stopping at AT_NULL. */
export function parseAuxv(buf: Buffer): AuxvEntry[] {
  const out: AuxvEntry[] = [];
  for (let off = 0; off + 16 <= buf.length; off += 16) {
    const type = Number(buf.readBigUInt64LE(off));
    if (type === AT_NULL) break;
    out.push({ type, value: buf.readBigUInt64LE(off + 8) });
  }
  return out;
}

/** Raw auxv, kept whole because PR_SET_MM_MAP wants it back byte for byte. */
export function readAuxv(pid: number): Buffer {
  return readProcBuffer(pid, 'auxv');
}
