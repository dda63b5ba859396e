// CRC-32 (IEEE 802.3, the zlib/gzip polynomial). node:zlib has a native crc32 from
// Node 20.15 (≈4.5 GiB/s here); older Node 20 builds get a table-driven fallback so
// that images written by either read the same.
import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, prev?: number) => number;

let table: Uint32Array | undefined;

function makeTable(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/** Pure-JS CRC-32; exported for the test that checks it against node:zlib. */
export function crc32Fallback(data: Uint8Array, prev = 0): number {
  table ??= makeTable();
  let c = ~prev >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const native = (zlib as unknown as { crc32?: Crc32 }).crc32;

/** CRC-32 of `data`, continuing from `prev` (the CRC of the bytes before it). */
export const crc32: Crc32 = typeof native === 'function' ? (d, p = 0) => native(d, p) : crc32Fallback;
