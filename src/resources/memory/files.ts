/**
 * Identity of files mapped into memory: recorded at dump, checked at restore. An ELF
 * file with a build ID is known by it and its size (build-id.ts); any other file by the
 * SHA-1 of its contents (by size and mtime when it is too big to hash).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { lazyCrypto } from '../../common/builtin.js';
import { CkptError } from '../../common/errors.js';
import { buildIdOf } from './build-id.js';
import type { MappedFile } from './state.js';

const HASH_LIMIT = 256 * 1024 * 1024;

/**
 * SHA-1s this process computed, by file identity and change time: a restore --check
 * reads back the files the restore just verified. ctime moves on any change of the
 * contents, so a hit is the same bytes.
 */
const hashes = new Map<string, string>();
const HASHES_KEPT = 1024;

function sha1Of(fd: number): string {
  const st = fstatSync(fd, { bigint: true });
  const key = `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  const known = hashes.get(key);
  if (known) return known;
  const h = lazyCrypto().createHash('sha1');
  const buf = Buffer.allocUnsafe(1 << 20);
  for (let pos = 0; ; ) {
    const n = readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    pos += n;
  }
  const sha1 = h.digest('hex');
  if (hashes.size >= HASHES_KEPT) hashes.clear();
  hashes.set(key, sha1);
  return sha1;
}

/** Identity of the file at `path`, read through `via` (e.g. /proc/PID/map_files/…) when given. */
export function identify(path: string, via = path): MappedFile {
  const fd = openSync(via, 'r');
  try {
    const st = fstatSync(fd);
    const base = { path, size: st.size, mtimeMs: st.mtimeMs };
    const buildId = buildIdOf(fd);
    if (buildId) return { ...base, sha1: null, buildId };
    return { ...base, sha1: st.size <= HASH_LIMIT ? sha1Of(fd) : null };
  } finally {
    closeSync(fd);
  }
}

/** Throws FILE_CHANGED unless the file at saved.path is the one seen at dump. */
export function checkIdentity(saved: MappedFile, who: string): void {
  let fd: number;
  try {
    fd = openSync(saved.path, 'r');
  } catch {
    throw new CkptError('FILE_CHANGED', `Cannot restore ${who}: ${saved.path} no longer exists`);
  }
  try {
    const st = fstatSync(fd);
    const changed = (how: string) => new CkptError('FILE_CHANGED', `Cannot restore ${who}: ${saved.path} changed since the dump (${how})`);
    if (st.size !== saved.size) throw changed(`size ${st.size}, was ${saved.size}`);
    if (saved.buildId !== undefined) {
      const now = buildIdOf(fd);
      if (now !== saved.buildId) throw changed(`build ID ${now ?? 'none'}, was ${saved.buildId}`);
    } else if (saved.sha1 !== null) {
      if (sha1Of(fd) !== saved.sha1) throw changed('contents differ');
    } else if (st.mtimeMs !== saved.mtimeMs) {
      throw changed('modified');
    }
  } finally {
    closeSync(fd);
  }
}
