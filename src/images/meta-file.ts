// Metadata image files on disk: zod-validated JSON inside the format.ts container.
// Validation runs on both sides: before a write (so a bug cannot produce an image we
// would refuse) and after a read (every field is untrusted until parsed).
import * as fs from 'node:fs';
import { z } from 'zod';
import { CkptError } from '../common/errors.js';
import { stringifyWithBigints } from './bigint.js';
import { crc32 } from './crc32.js';
import {
  badImage, checkPayload, encodeMetaImage, MAX_HEADER_LENGTH, MAX_META_PAYLOAD, parseMetaHeader,
} from './format.js';
import { closeQuietly, createFile, openImage, preadFull, tryIo, writeAll } from './io.js';

/** What a written file contributes to the inventory. */
export interface WrittenFile {
  size: number;
  crc32: number;
}

function describe(error: z.ZodError): string {
  const shown = error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  const more = error.issues.length > 3 ? ` (+${error.issues.length - 3} more)` : '';
  return shown.join('; ') + more;
}

/** Validates `value` and returns its JSON payload (bigints as decimal strings). */
export function encodePayload<S extends z.ZodType>(where: string, schema: S, value: z.output<S>): Buffer {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new CkptError('INTERNAL', `Cannot write ${where}: value does not match its schema: ${describe(parsed.error)}`);
  }
  const json = Buffer.from(stringifyWithBigints(parsed.data), 'utf8');
  if (json.length > MAX_META_PAYLOAD) {
    throw new CkptError('INTERNAL', `Cannot write ${where}: payload of ${json.length} bytes exceeds the bound`);
  }
  return json;
}

/** Parses and validates a JSON payload. */
export function decodePayload<S extends z.ZodType>(where: string, schema: S, payload: Buffer): z.output<S> {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch (e) {
    throw badImage(where, `payload is not valid JSON (${(e as Error).message})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw badImage(where, `does not match its schema: ${describe(parsed.error)}`);
  return parsed.data;
}

/** Writes a complete image file (0600, fsync'd) and returns its size and CRC, and its bytes (for a page server). */
export function writeMetaFile(path: string, args: { kind: string; payload: Buffer; at?: string }): WrittenFile & { bytes: Buffer } {
  const bytes = encodeMetaImage(args.kind, args.payload);
  const fd = createFile(args.at ?? path, path);
  try {
    tryIo(`write ${path}`, () => {
      writeAll(fd, bytes);
      fs.fsyncSync(fd);
    });
  } finally {
    closeQuietly(fd);
  }
  return { size: bytes.length, crc32: crc32(bytes), bytes };
}

/** Reads an image file, checking header, kind and payload CRC; returns the payload. */
export function readMetaFile(path: string, kind: string): { payload: Buffer; file: WrittenFile } {
  const fd = openImage(path);
  try {
    return tryIo(`read ${path}`, () => {
      const size = fs.fstatSync(fd).size;
      const head = Buffer.alloc(Math.min(size, MAX_HEADER_LENGTH));
      preadFull(fd, head, 0);
      const h = parseMetaHeader(path, head, size);
      if (h.kind !== kind) throw badImage(path, `holds a ${h.kind} image, expected ${kind}`);
      const payload = Buffer.allocUnsafe(h.payloadLength);
      // The size was checked against fstat; a short read now means the file shrank under us.
      if (preadFull(fd, payload, h.headerLength) !== h.payloadLength) throw badImage(path, 'truncated (payload)');
      checkPayload(path, h, payload);
      const fileCrc = crc32(payload, crc32(head.subarray(0, h.headerLength)));
      return { payload, file: { size, crc32: fileCrc } };
    });
  } finally {
    closeQuietly(fd);
  }
}
