/** struct iovec { void *iov_base; size_t iov_len; } arrays. */
export interface Iovec {
  base: bigint;
  len: number;
}

export const IOVEC_SIZE = 16;

export function encodeIovecs(iovs: readonly Iovec[]): Buffer {
  const buf = Buffer.alloc(iovs.length * IOVEC_SIZE);
  iovs.forEach((v, i) => {
    buf.writeBigUInt64LE(BigInt.asUintN(64, v.base), i * IOVEC_SIZE);
    buf.writeBigUInt64LE(BigInt(v.len), i * IOVEC_SIZE + 8);
  });
  return buf;
}

export function decodeIovecs(buf: Buffer): Iovec[] {
  const out: Iovec[] = [];
  for (let off = 0; off + IOVEC_SIZE <= buf.length; off += IOVEC_SIZE) {
    out.push({ base: buf.readBigUInt64LE(off), len: Number(buf.readBigUInt64LE(off + 8)) });
  }
  return out;
}
