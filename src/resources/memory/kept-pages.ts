/**
 * Page data a restore has just written, kept for restore --check. The restore reads
 * each unit of a page file into a buffer and writes it into the process; with the
 * check on, that buffer is one of these, left as it was, so that the check compares
 * what it reads back from the process with the bytes the file held instead of reading
 * the file a second time (for a small process that re-read was the check's largest
 * cost: docs/performance.md, "restore --check"). Each piece is labelled with the file
 * and offset it was read from, so a page written to the wrong place is still found:
 * the check looks up the saved bytes by the page's own place in the page file. Pages
 * beyond the budget, and those filled another way (through /proc/PID/mem, a lazy
 * server, a parent's copy-on-write), are read from the file as before.
 */
import { UNIT_BYTES } from './split.js';

/** Units kept per restore: 8 MiB. A bigger process's other units are read again by the check. */
const MAX_UNITS = 4;

/**
 * The unit buffers, allocated once per ckpt process and reused by every restore that
 * checks (a fresh buffer costs a fault per page: docs/performance.md, "Cold memory").
 */
const pool: Buffer[] = [];

interface Piece {
  path: string;
  fileStart: number;
  bytes: number;
  data: Buffer;
}

/** The pieces of page files one restore kept (restore.ts makes one per checked restore). */
export class KeptPages {
  private readonly pieces: Piece[] = [];

  /**
   * A buffer for the `bytes` at `fileStart` of page file `path`, which the caller reads
   * in and writes to the process unchanged; undefined once the budget is spent.
   */
  room(path: string, unit: { fileStart: number; bytes: number }): Buffer | undefined {
    const i = this.pieces.length;
    if (i >= MAX_UNITS || unit.bytes > UNIT_BYTES) return undefined;
    const buf = (pool[i] ??= Buffer.allocUnsafeSlow(UNIT_BYTES));
    const data = buf.subarray(0, unit.bytes);
    this.pieces.push({ path, fileStart: unit.fileStart, bytes: unit.bytes, data });
    return data;
  }

  /** The `len` bytes at `offset` of page file `path`, if a piece holds all of them. */
  get(path: string, offset: number, len: number): Buffer | undefined {
    for (const p of this.pieces) {
      if (p.path !== path || offset < p.fileStart || offset + len > p.fileStart + p.bytes) continue;
      return p.data.subarray(offset - p.fileStart, offset - p.fileStart + len);
    }
    return undefined;
  }
}
