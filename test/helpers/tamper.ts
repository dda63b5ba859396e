/**
 * Editing a metadata image the way an attacker who can write the image directory
 * would: change the JSON, then recompute the image's CRC and its inventory entry
 * (size, CRC) exactly as src/images does, so the set passes every checksum.
 */
import { chownSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from '../../src/images/crc32.js';
import { encodeMetaImage } from '../../src/images/format.js';
import { readMetaFile } from '../../src/images/meta-file.js';

type Json = Record<string, unknown>;

function rewrite(path: string, kind: string, change: (v: Json) => void): { size: number; crc32: number } {
  const value = JSON.parse(readMetaFile(path, kind).payload.toString('utf8')) as Json;
  change(value);
  const bytes = encodeMetaImage(kind, Buffer.from(JSON.stringify(value), 'utf8'));
  writeFileSync(path, bytes);
  return { size: bytes.length, crc32: crc32(bytes) };
}

/** Rewrites image NAME.img (of header kind KIND) in DIR and its inventory entry. */
export function tamperImage(dir: string, args: { name: string; kind: string; change: (v: Json) => void }): void {
  const file = `${args.name}.img`;
  const done = rewrite(join(dir, file), args.kind, args.change);
  rewrite(join(dir, 'inventory.img'), 'inventory', (inv) => {
    const entry = (inv['files'] as Json[]).find((f) => f['name'] === file);
    if (!entry) throw new Error(`${file} is not in the inventory`);
    Object.assign(entry, done);
  });
}

/** Gives DIR and every file in it to uid:gid (a user's own dump). */
export function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const f of readdirSync(dir)) chownSync(join(dir, f), uid, gid);
}
