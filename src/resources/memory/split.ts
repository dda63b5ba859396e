/**
 * Page copies cut into units: up to UNIT_BYTES of pages that follow each other in the
 * page file, in at most MAX_IOV segments, so that one process_vm_readv (dump) or
 * process_vm_writev (restore) and one file read or write move a whole unit, whether it
 * is one big area or hundreds of one-page areas.
 */

/** Pages at `vaddr` in the target, at `fileOffset` in the page file. */
export interface Segment {
  vaddr: bigint;
  len: number;
  fileOffset: number;
  /** At dump: read through /proc/PID/mem by ckpt (see copy.ts). */
  viaMem?: boolean;
}

/** A piece of the copy: segments that follow each other in the file. */
export interface Unit {
  segs: Segment[];
  bytes: number;
  fileStart: number;
  fileEnd: number;
}

/** Bytes per unit: one buffer this big stays in the CPU's cache between the two copies. */
export const UNIT_BYTES = 2 * 1024 * 1024;
/** IOV_MAX: iovecs per process_vm_readv/writev. */
export const MAX_IOV = 1024;

let buffer: Buffer | undefined;

/**
 * The one UNIT_BYTES buffer the copies go through (dump, restore, restore --check),
 * allocated once per ckpt process: a fresh buffer per copy cost a fault per page, and on
 * these VMs a fault on a fresh page costs an exit to the host (~25 µs: ~13 ms per 2 MiB).
 * Copies are synchronous and never nested, so one buffer serves them all.
 */
export function unitBuffer(): Buffer {
  buffer ??= Buffer.allocUnsafeSlow(UNIT_BYTES);
  return buffer;
}

/** Cuts segments (ascending in the file) into units of at most UNIT_BYTES and MAX_IOV segments. */
export function unitsOf(segs: readonly Segment[]): Unit[] {
  const units: Unit[] = [];
  let cur: Unit | undefined;
  for (const s of segs) {
    let off = 0;
    while (off < s.len) {
      const contiguous = cur !== undefined && cur.fileEnd === s.fileOffset + off;
      if (!cur || !contiguous || cur.bytes >= UNIT_BYTES || cur.segs.length >= MAX_IOV) {
        cur = { segs: [], bytes: 0, fileStart: s.fileOffset + off, fileEnd: s.fileOffset + off };
        units.push(cur);
      }
      const len = Math.min(s.len - off, UNIT_BYTES - cur.bytes);
      cur.segs.push({ vaddr: s.vaddr + BigInt(off), len, fileOffset: s.fileOffset + off, viaMem: s.viaMem });
      cur.bytes += len;
      cur.fileEnd += len;
      off += len;
    }
  }
  return units;
}
