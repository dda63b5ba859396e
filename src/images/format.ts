// The container of a metadata image: a fixed little-endian header, then a JSON
// payload. Pure functions over buffers; the fs side is in meta-file.ts.
//
//   0  magic "CKPTIMG\0"            8 bytes
//   8  format major                 u32
//  12  format minor                 u32
//  16  kind length K                u32
//  20  kind name (UTF-8)            K bytes
//  20+K  payload length             u64
//  28+K  CRC-32 of the payload      u32
//  32+K  payload (JSON, UTF-8)
import { CkptError } from '../common/errors.js';
import { crc32 } from './crc32.js';

/** Version of the on-disk format, independent of the ckpt release. */
export const FORMAT_VERSION = Object.freeze({ major: 1, minor: 7 });
export type FormatVersion = { major: number; minor: number };

export const META_MAGIC = Buffer.from('CKPTIMG\0', 'latin1');
/** Refuse metadata payloads larger than this before allocating for them. */
export const MAX_META_PAYLOAD = 256 * 1024 * 1024;
export const MAX_KIND_LENGTH = 64;
/** Enough bytes to hold any valid header. */
export const MAX_HEADER_LENGTH = 32 + MAX_KIND_LENGTH;

const KIND_RE = /^[a-z][a-z0-9_-]*$/;

export interface MetaHeader {
  version: FormatVersion;
  kind: string;
  headerLength: number;
  payloadLength: number;
  payloadCrc: number;
}

export function badImage(where: string, reason: string): CkptError {
  return new CkptError('BAD_IMAGE', `Cannot read ${where}: ${reason}`);
}

/**
 * Same major and a minor we know, or refuse. A newer minor adds optional fields, which
 * this version's schemas would strip: state the images hold and this ckpt would not
 * restore (locks, timers…), a silently wrong restore. So it is refused as well.
 */
export function checkVersion(where: string, v: FormatVersion): void {
  const ours = `${FORMAT_VERSION.major}.x`;
  if (v.major > FORMAT_VERSION.major) {
    throw badImage(where, `image format ${v.major}.${v.minor} is newer than this ckpt understands (${ours})`);
  }
  if (v.major < FORMAT_VERSION.major) {
    throw badImage(where, `image format ${v.major}.${v.minor} is older than this ckpt can read (${ours})`);
  }
  if (v.minor > FORMAT_VERSION.minor) {
    throw badImage(where, `image format ${v.major}.${v.minor} is newer than this ckpt understands (${v.major}.${FORMAT_VERSION.minor}): it may hold state this version would not restore; use the ckpt that made it, or a newer one`);
  }
}

export function validKind(kind: string): boolean {
  return kind.length <= MAX_KIND_LENGTH && KIND_RE.test(kind);
}

export function encodeMetaImage(kind: string, payload: Buffer): Buffer {
  if (!validKind(kind)) throw new CkptError('USAGE', `Cannot write image: bad kind name ${JSON.stringify(kind)}`);
  const k = Buffer.from(kind, 'utf8');
  const head = Buffer.alloc(32 + k.length);
  META_MAGIC.copy(head, 0);
  head.writeUInt32LE(FORMAT_VERSION.major, 8);
  head.writeUInt32LE(FORMAT_VERSION.minor, 12);
  head.writeUInt32LE(k.length, 16);
  k.copy(head, 20);
  head.writeBigUInt64LE(BigInt(payload.length), 20 + k.length);
  head.writeUInt32LE(crc32(payload), 28 + k.length);
  return Buffer.concat([head, payload]);
}

/**
 * Parses a header from the first bytes of a file of `fileSize` bytes. Checks magic,
 * version, kind, the size bound and that the file holds exactly header + payload.
 */
export function parseMetaHeader(where: string, head: Buffer, fileSize: number): MetaHeader {
  if (head.length < 8 || !head.subarray(0, 8).equals(META_MAGIC)) {
    throw badImage(where, head.length < 8 ? 'truncated (no header)' : 'not a ckpt image (bad magic)');
  }
  if (head.length < 20) throw badImage(where, 'truncated (header)');
  const version = { major: head.readUInt32LE(8), minor: head.readUInt32LE(12) };
  checkVersion(where, version);
  const kindLength = head.readUInt32LE(16);
  if (kindLength > MAX_KIND_LENGTH) throw badImage(where, `kind name of ${kindLength} bytes is too long`);
  const headerLength = 32 + kindLength;
  if (head.length < headerLength) throw badImage(where, 'truncated (header)');
  const kind = head.toString('utf8', 20, 20 + kindLength);
  if (!validKind(kind)) throw badImage(where, `bad kind name ${JSON.stringify(kind)}`);
  const declared = head.readBigUInt64LE(20 + kindLength);
  if (declared > BigInt(MAX_META_PAYLOAD)) {
    throw badImage(where, `payload of ${declared} bytes exceeds the ${MAX_META_PAYLOAD}-byte bound`);
  }
  const payloadLength = Number(declared);
  const present = fileSize - headerLength;
  if (present < payloadLength) throw badImage(where, `truncated (payload is ${payloadLength} bytes, ${present} present)`);
  if (present > payloadLength) throw badImage(where, `${present - payloadLength} trailing bytes after the payload`);
  return { version, kind, headerLength, payloadLength, payloadCrc: head.readUInt32LE(28 + kindLength) };
}

/** Checks the payload CRC against the header. */
export function checkPayload(where: string, h: MetaHeader, payload: Buffer): void {
  const got = crc32(payload);
  if (got !== h.payloadCrc) {
    throw badImage(where, `checksum mismatch (payload crc32 ${hex(got)}, header says ${hex(h.payloadCrc)})`);
  }
}

export function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
