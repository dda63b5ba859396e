/** Identity of files mapped into memory: recorded at dump, checked at restore. */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import type { MappedFile } from './state.js';

const HASH_LIMIT = 256 * 1024 * 1024;

function sha1Of(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const h = createHash('sha1');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      pos += n;
    }
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/** Identity of the file at `path`, read through `via` (e.g. /proc/PID/map_files/…) when given. */
export function identify(path: string, via = path): MappedFile {
  const st = statSync(via);
  return { path, size: st.size, mtimeMs: st.mtimeMs, sha1: st.size <= HASH_LIMIT ? sha1Of(via) : null };
}

/** Throws FILE_CHANGED unless the file at saved.path is the one seen at dump. */
export function checkIdentity(saved: MappedFile, who: string): void {
  let st;
  try {
    const fd = openSync(saved.path, 'r');
    try {
      st = fstatSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    throw new CkptError('FILE_CHANGED', `Cannot restore ${who}: ${saved.path} no longer exists`);
  }
  if (st.size !== saved.size) {
    throw new CkptError('FILE_CHANGED', `Cannot restore ${who}: ${saved.path} changed since the dump (size ${st.size}, was ${saved.size})`);
  }
  if (saved.sha1 !== null) {
    if (sha1Of(saved.path) !== saved.sha1) throw new CkptError('FILE_CHANGED', `Cannot restore ${who}: ${saved.path} changed since the dump (contents differ)`);
  } else if (st.mtimeMs !== saved.mtimeMs) {
    throw new CkptError('FILE_CHANGED', `Cannot restore ${who}: ${saved.path} changed since the dump (modified)`);
  }
}
